package proxy

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/swarmgate/swarmgate/internal/rawio"
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
	// One direction on a goroutine of its own, the other on this one.
	upDone := make(chan int64, 1)
	go func() { upDone <- pipe(backend, client) }()
	down := pipe(conn, backend)
	x.bytes, x.reqBytes = down, <-upDone
}

// pipe copies src to dst, then half-closes dst where it can so the peer sees
// EOF, or closes it outright so the opposite copy ends too.
func pipe(dst io.WriteCloser, src io.Reader) int64 {
	var n int64
	if rc := rawConn(src); rc != nil {
		n = copyIdleFree(dst, rc)
	} else {
		// Not dst's ReadFrom: a *net.TCPConn's, from a source that is not
		// one, is io.Copy with a 32 KiB buffer of its own.
		bp := tunnelBufPool.Get().(*[]byte)
		n, _ = io.CopyBuffer(writerOnly{dst}, src, *bp)
		tunnelBufPool.Put(bp)
	}
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := dst.(closeWriter); ok {
		cw.CloseWrite()
	} else {
		dst.Close()
	}
	return n
}

// tunnelBufPool holds the buffers of the tunnel copies that must wait for
// data holding one (a TLS client, the upstream side): 8 KiB, a WebSocket
// message or more per read, as NGINX's proxy_buffer_size, so that an idle
// WebSocket holds 8 KiB there, not 32.
var tunnelBufPool = sync.Pool{New: func() any { b := make([]byte, 8<<10); return &b }}

// writerOnly hides a writer's ReadFrom from io.CopyBuffer.
type writerOnly struct{ io.Writer }

// rawConn returns src's raw connection when src is a plain TCP connection,
// whose reads can wait for data without a buffer (copyIdleFree); else nil.
func rawConn(src io.Reader) syscall.RawConn {
	tc, ok := src.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// copyIdleFree copies src to dst until src ends or fails, holding no buffer
// while src has nothing to read: the read waits for data in the runtime's
// poller, takes a pooled buffer only once data is there, and gives it back
// after the write. An idle WebSocket then costs its goroutine, not a 32 KiB
// buffer. The source's deadlines and Close end the wait as they end a Read.
func copyIdleFree(dst io.Writer, src syscall.RawConn) int64 {
	var total int64
	for {
		var bp *[]byte
		var n int
		var rerr error
		err := src.Read(func(fd uintptr) bool {
			if bp == nil {
				bp = bufPool.Get().(*[]byte)
			}
			n, rerr = rawio.ReadFD(int(fd), *bp)
			if rerr == syscall.EAGAIN {
				bufPool.Put(bp) // nothing to read: wait without it
				bp = nil
				return false
			}
			return true
		})
		if err == nil && rerr == nil && n > 0 {
			var werr error
			n, werr = dst.Write((*bp)[:n])
			total += int64(n)
			err = werr
		} else if err == nil {
			err = io.EOF // io.EOF is the end; rerr a reset or the like
		}
		if bp != nil {
			bufPool.Put(bp)
		}
		if err != nil {
			return total
		}
	}
}
