package h1serve

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// TestRequestsKeptAfterTheNext: a request a handler keeps (its URL, its
// header) is unchanged by the requests that follow on its connection,
// for heads of fewer fields than the response holds values for and of more.
func TestRequestsKeptAfterTheNext(t *testing.T) {
	got := make(chan *http.Request, 8)
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r
	})})
	c := dial(t, addr)
	br := bufio.NewReader(c)
	type want struct {
		url    url.URL
		header http.Header
	}
	var kept []*http.Request
	var wants []want
	for i, n := range []int{1, 8, 12, 3} {
		var fields strings.Builder
		header := http.Header{}
		for j := range n {
			k, v := fmt.Sprintf("X-F%d", j%10), fmt.Sprintf("r%d-v%d", i, j)
			fmt.Fprintf(&fields, "%s: %s\r\n", k, v)
			header[k] = append(header[k], v)
		}
		target := fmt.Sprintf("/r%d/p?q=%d", i, i)
		io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: a\r\n"+fields.String()+"\r\n")
		readResponse(t, br, "GET")
		r := <-got
		kept = append(kept, r)
		wants = append(wants, want{url: url.URL{Path: fmt.Sprintf("/r%d/p", i), RawQuery: fmt.Sprintf("q=%d", i)}, header: header})
	}
	for i, r := range kept {
		if *r.URL != wants[i].url || !reflect.DeepEqual(r.Header, wants[i].header) {
			t.Errorf("request %d kept: URL %#v header %v; want %#v %v", i, *r.URL, r.Header, wants[i].url, wants[i].header)
		}
	}
}
