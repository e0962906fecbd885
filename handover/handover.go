// Package handover passes listening sockets from a running edge to its
// successor over a unix socket, as NGINX's binary upgrade and HAProxy's
// seamless reload do: the kernel keeps accepting into the same socket while
// the processes change, so a restart or upgrade refuses no connection.
//
// The running process Offers its listeners; a new process started with the
// same socket path Inherits them, starts serving, and Acks; the old process
// then stops accepting and drains its requests in flight.
//
// UDP sockets (QUIC) travel too. A UDP socket has no accept queue: after the
// ack both processes read datagrams from the one socket until the old one
// has drained, so each sees some of the other's packets. QUIC survives
// that as loss (the packets of an unknown connection are dropped, not
// answered with a stateless reset) and the old process's GOAWAY moves its
// clients to new connections, which the successor serves.
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

// header names the file descriptors that travel with it, in order: the
// listeners', then the packet sockets'. A predecessor that knows no packet
// sockets sends no Packets.
type header struct {
	Names   []string `json:"names"`
	Packets []string `json:"packets,omitempty"`
}

// Sockets are what a hand-over carries, by name: stream listeners ("http",
// "https", "tcp:5432") and packet sockets ("https" for QUIC).
type Sockets struct {
	Listeners map[string]net.Listener
	Packets   map[string]net.PacketConn
}

// Close closes every socket.
func (s Sockets) Close() {
	for _, ln := range s.Listeners {
		ln.Close()
	}
	for _, pc := range s.Packets {
		pc.Close()
	}
}

// Offer serves hand-overs on the unix socket at path until ctx is done or one
// succeeds. On success it calls handedOver once the successor has acked, and
// returns. sockets returns what is handed over.
func Offer(ctx context.Context, path string, sockets func() Sockets, handedOver func()) error {
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
		err = send(c, sockets())
		c.Close()
		if err == nil {
			handedOver()
			return nil
		}
		// A failed hand-over leaves this process serving; wait for another.
	}
}

// filer is a socket whose descriptor can be duplicated: *net.TCPListener,
// *net.UnixListener, *net.UDPConn.
type filer interface{ File() (*os.File, error) }

func send(c *net.UnixConn, s Sockets) error {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	var fds []int
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	add := func(kind, name string, sock any) error {
		fl, ok := sock.(filer)
		if !ok {
			return fmt.Errorf("handover: %s %s cannot be passed", kind, name)
		}
		f, err := fl.File()
		if err != nil {
			return fmt.Errorf("handover: %s %s: %w", kind, name, err)
		}
		files = append(files, f)
		fds = append(fds, int(f.Fd()))
		return nil
	}
	var h header
	for _, n := range sortedKeys(s.Listeners) {
		if err := add("listener", n, s.Listeners[n]); err != nil {
			return err
		}
		h.Names = append(h.Names, n)
	}
	for _, n := range sortedKeys(s.Packets) {
		if err := add("packet socket", n, s.Packets[n]); err != nil {
			return err
		}
		h.Packets = append(h.Packets, n)
	}
	if len(fds) > maxListeners {
		return fmt.Errorf("handover: %d sockets, at most %d", len(fds), maxListeners)
	}
	hb, _ := json.Marshal(h)
	if _, _, err := c.WriteMsgUnix(hb, syscall.UnixRights(fds...), nil); err != nil {
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

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Inherit takes the sockets of the process offering at path. The caller
// must start serving on them and then call ack, which tells the predecessor
// to drain. It returns ErrNoPredecessor when nobody offers.
func Inherit(ctx context.Context, path string) (sockets Sockets, ack func() error, err error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return Sockets{}, nil, ErrNoPredecessor
	}
	c := conn.(*net.UnixConn)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 64<<10)
	oob := make([]byte, syscall.CmsgSpace(maxListeners*4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		c.Close()
		return Sockets{}, nil, fmt.Errorf("handover: receive: %w", err)
	}
	fds, err := parseRights(oob[:oobn])
	if err != nil {
		c.Close()
		return Sockets{}, nil, err
	}
	var h header
	if err := json.Unmarshal(buf[:n], &h); err != nil || len(h.Names)+len(h.Packets) != len(fds) {
		for _, fd := range fds {
			syscall.Close(fd)
		}
		c.Close()
		return Sockets{}, nil, fmt.Errorf("handover: malformed header (%d names, %d descriptors): %v", len(h.Names)+len(h.Packets), len(fds), err)
	}
	sockets = Sockets{Listeners: make(map[string]net.Listener, len(h.Names)), Packets: make(map[string]net.PacketConn, len(h.Packets))}
	var firstErr error
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "handover")
		switch {
		case firstErr != nil:
		case i < len(h.Names):
			ln, err := net.FileListener(f) // dups fd
			if err != nil {
				firstErr = fmt.Errorf("handover: listener %s: %w", h.Names[i], err)
				break
			}
			sockets.Listeners[h.Names[i]] = ln
		default:
			name := h.Packets[i-len(h.Names)]
			pc, err := net.FilePacketConn(f) // dups fd
			if err != nil {
				firstErr = fmt.Errorf("handover: packet socket %s: %w", name, err)
				break
			}
			sockets.Packets[name] = pc
		}
		f.Close()
	}
	if firstErr != nil {
		sockets.Close()
		c.Close()
		return Sockets{}, nil, firstErr
	}
	ack = func() error {
		defer c.Close()
		if _, err := c.Write([]byte("ok")); err != nil {
			return fmt.Errorf("handover: ack: %w", err)
		}
		return nil
	}
	return sockets, ack, nil
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
