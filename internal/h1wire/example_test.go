package h1wire_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/swarmgate/swarmgate/internal/h1wire"
)

// A connection loop reads a head, frames the body, and answers a refusal
// with the status the error carries.
func Example() {
	conn := bufio.NewReader(strings.NewReader("" +
		"POST /upload HTTP/1.1\r\nHost: app.example.org\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5\r\nhello\r\n0\r\n\r\n" +
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"))
	var req h1wire.Request // reused: no allocation per request once grown
	var body h1wire.ChunkedReader
	for {
		err := h1wire.ReadHead(conn, &req, h1wire.Limits{})
		var refused *h1wire.Error
		switch {
		case errors.Is(err, io.EOF):
			return
		case errors.As(err, &refused):
			fmt.Println(refused.Status, refused.Reason)
			return
		case err != nil:
			fmt.Println(err)
			return
		}
		fmt.Printf("%s %s host=%s body=%v\n", req.Method, req.Path, req.Host, req.Body)
		if req.Body == h1wire.BodyChunked {
			body.Reset(conn, h1wire.Limits{})
			data, err := io.ReadAll(&body)
			fmt.Printf("body %q %v\n", data, err)
		}
	}
	// Output:
	// POST /upload host=app.example.org body=chunked
	// body "hello" <nil>
	// 400 both Content-Length and Transfer-Encoding
}
