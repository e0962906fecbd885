// Package handover passes listening sockets from a running edge to its
// successor over a unix socket, as NGINX's binary upgrade and HAProxy's
// seamless reload do: the kernel keeps accepting into the same socket while
// the processes change, so a restart or upgrade refuses no connection.
//
// The running process Offers its listeners; a new process started with the
// same socket path Inherits them, starts serving, and Acks; the old process
// then stops accepting and drains its requests in flight.
package handover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"syscall"
	"time"
)

// maxListeners bounds what one hand-over carries.
const maxListeners = 64

// header names the file descriptors that travel with it, in order.
type header struct {
	Names []string `json:"names"`
}

// Offer serves hand-overs on the unix socket at path until ctx is done or one
// succeeds. On success it calls handedOver once the successor has acked, and
// returns. listeners maps names ("http", "https", "tcp:5432") to listeners.
func Offer(ctx context.Context, path string, listeners func() map[string]net.Listener, handedOver func()) error {
	os.Remove(path) // a stale socket of a process that died
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("handover: listen %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false) // the successor rebinds the path; closing ours must not remove theirs
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("handover: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer ln.Close()
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("handover: accept: %w", err)
		}
		err = send(c, listeners())
		c.Close()
		if err == nil {
			handedOver()
			return nil
		}
		// A failed hand-over leaves this process serving; wait for another.
	}
}

func send(c *net.UnixConn, ls map[string]net.Listener) error {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	names := make([]string, 0, len(ls))
	for n := range ls {
		names = append(names, n)
	}
	sort.Strings(names)
	var fds []int
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, n := range names {
		fl, ok := ls[n].(interface{ File() (*os.File, error) })
		if !ok {
			return fmt.Errorf("handover: listener %s cannot be passed", n)
		}
		f, err := fl.File()
		if err != nil {
			return fmt.Errorf("handover: listener %s: %w", n, err)
		}
		files = append(files, f)
		fds = append(fds, int(f.Fd()))
	}
	h, _ := json.Marshal(header{Names: names})
	if _, _, err := c.WriteMsgUnix(h, syscall.UnixRights(fds...), nil); err != nil {
		return fmt.Errorf("handover: send: %w", err)
	}
	// The successor acks once it is serving on the sockets.
	ack := make([]byte, 2)
	if _, err := c.Read(ack); err != nil || string(ack) != "ok" {
		return fmt.Errorf("handover: successor did not ack: %v", err)
	}
	return nil
}

// ErrNoPredecessor means nothing offers listeners at the path.
var ErrNoPredecessor = errors.New("handover: no running edge to take over from")

// Inherit takes the listeners of the process offering at path. The caller
// must start serving on them and then call ack, which tells the predecessor
// to drain. It returns ErrNoPredecessor when nobody offers.
func Inherit(ctx context.Context, path string) (listeners map[string]net.Listener, ack func() error, err error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, nil, ErrNoPredecessor
	}
	c := conn.(*net.UnixConn)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 64<<10)
	oob := make([]byte, syscall.CmsgSpace(maxListeners*4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("handover: receive: %w", err)
	}
	fds, err := parseRights(oob[:oobn])
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	closeFDs := func() {
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}
	var h header
	if err := json.Unmarshal(buf[:n], &h); err != nil || len(h.Names) != len(fds) {
		closeFDs()
		c.Close()
		return nil, nil, fmt.Errorf("handover: malformed header (%d names, %d descriptors): %v", len(h.Names), len(fds), err)
	}
	listeners = make(map[string]net.Listener, len(fds))
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), h.Names[i])
		ln, err := net.FileListener(f) // dups fd
		f.Close()
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			c.Close()
			return nil, nil, fmt.Errorf("handover: listener %s: %w", h.Names[i], err)
		}
		listeners[h.Names[i]] = ln
	}
	ack = func() error {
		defer c.Close()
		if _, err := c.Write([]byte("ok")); err != nil {
			return fmt.Errorf("handover: ack: %w", err)
		}
		return nil
	}
	return listeners, ack, nil
}

func parseRights(oob []byte) ([]int, error) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("handover: control message: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		r, err := syscall.ParseUnixRights(&m)
		if err != nil {
			return nil, fmt.Errorf("handover: rights: %w", err)
		}
		fds = append(fds, r...)
	}
	return fds, nil
}
