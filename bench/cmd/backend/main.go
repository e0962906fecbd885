// Command backend is the origin server of the side-by-side benchmark: a
// minimal HTTP/1.1 keep-alive server that answers every GET with a canned
// response, so that the proxies in front of it, not the origin, set the pace.
//
// It deliberately bypasses net/http: the backend shares one core with the load
// generator, and a hand-rolled loop over a buffered reader costs a fraction of
// what net/http spends per request. Paths:
//
//	/      a 13-byte body
//	/1k    a 1 KiB body
//	/64k   a 64 KiB body
//
// Anything else gets 404. Requests may be pipelined; request bodies with a
// Content-Length are read and discarded; chunked request bodies are refused.
package main

import (
	"context"
	"io"
	"time"

	"github.com/swarmgate/swarmgate/bench/internal/benchkit"
)

func main() { benchkit.ServerMain(run) }

// run listens on -listen and serves until ctx is done.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := benchkit.FlagSet("backend", stderr)
	idle := fs.Duration("idle-timeout", 60*time.Second, "close a connection idle (or stalled mid-request) this long")
	ln, err := benchkit.ParseListen(fs, args, "127.0.0.1:9000")
	if err != nil {
		return err
	}
	s := newServer(*idle)
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	err = s.serve(ln)
	s.close()
	if ctx.Err() != nil {
		return nil
	}
	return err
}
