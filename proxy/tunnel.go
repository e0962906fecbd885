package proxy

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// tunnel completes an Upgrade (WebSocket and the like): it writes the
// upstream's 101 to the client, then copies bytes both ways until both sides
// are done. The tunnel is tracked so that shutdown can close it.
func (p *Proxy) tunnel(w http.ResponseWriter, r *http.Request, resp *http.Response, x *exchange) {
	backend, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		p.fail(w, x, http.StatusBadGateway, "upstream switched protocols without a writable body")
		return
	}
	defer backend.Close()
	if want, got := upgradeType(r.Header), upgradeType(resp.Header); !strings.EqualFold(want, got) {
		p.fail(w, x, http.StatusBadGateway, "upstream switched to "+got+", client asked for "+want)
		return
	}
	rc := http.NewResponseController(w)
	conn, brw, err := rc.Hijack()
	if err != nil {
		p.fail(w, x, http.StatusBadGateway, "cannot take over the client connection: "+err.Error())
		return
	}
	defer conn.Close()
	p.metrics.tunnels.Inc()
	defer p.metrics.tunnels.Dec()
	// At the backend drain deadline the backend side is closed: the client
	// gets a FIN once the backend's last bytes are through (not a reset), and
	// has a few seconds to close its side.
	defer p.hold(&longLived{addr: x.endpoint, conn: conn, stop: func() {
		backend.Close()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	}})()

	upgrade := resp.Header.Get("Upgrade")
	removeHopByHop(resp.Header)
	resp.Header.Set("Connection", "Upgrade")
	resp.Header.Set("Upgrade", upgrade)
	for k, vv := range w.Header() { // set by the proxy before the hijack
		if _, ok := resp.Header[k]; !ok {
			resp.Header[k] = vv
		}
	}
	x.status = resp.StatusCode
	resp.Body = nil // Write must not copy a body for a 101
	if err := resp.Write(brw); err != nil {
		x.reason = "writing 101 to client: " + err.Error()
		return
	}
	if err := brw.Flush(); err != nil {
		x.reason = "writing 101 to client: " + err.Error()
		return
	}
	// Bytes the client sent after its request but before the 101 are in brw.
	var client io.Reader = conn
	if n := brw.Reader.Buffered(); n > 0 {
		head, _ := brw.Reader.Peek(n)
		client = io.MultiReader(strings.NewReader(string(head)), conn)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	var up, down int64
	go func() {
		defer wg.Done()
		up = pipe(backend, client)
	}()
	go func() {
		defer wg.Done()
		down = pipe(conn, backend)
	}()
	wg.Wait()
	x.bytes, x.reqBytes = down, up
}

// pipe copies src to dst, then half-closes dst where it can so the peer sees
// EOF, or closes it outright so the opposite copy ends too.
func pipe(dst io.WriteCloser, src io.Reader) int64 {
	bp := bufPool.Get().(*[]byte)
	n, _ := io.CopyBuffer(dst, src, *bp)
	bufPool.Put(bp)
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := dst.(closeWriter); ok {
		cw.CloseWrite()
	} else {
		dst.Close()
	}
	return n
}
