package h2serve

import (
	"bytes"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// FuzzConn feeds a connection the preface, a SETTINGS frame and then the
// fuzzer's bytes as frames: whatever they are, the server must not panic,
// must answer within the protocol (every frame it sends parses), and must
// let go of the connection once the client closes it.
func FuzzConn(f *testing.F) {
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, kv := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":path", "/"}, {":authority", "x"}, {"content-length", "3"}} {
		enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	var seed bytes.Buffer
	fr := http2.NewFramer(&seed, nil)
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndHeaders: true})
	fr.WriteData(1, true, []byte("abc"))
	fr.WriteWindowUpdate(0, 100)
	fr.WritePing(false, [8]byte{1})
	fr.WriteRSTStream(1, http2.ErrCodeCancel)
	f.Add(seed.Bytes())
	seed.Reset()
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: block.Bytes(), EndHeaders: false})
	fr.WriteContinuation(3, true, nil)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
	fr.WriteData(3, false, []byte("ab"))
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: []byte{0x40, 1, 'x', 1, 'y'}, EndStream: true, EndHeaders: true})
	f.Add(seed.Bytes())
	f.Add([]byte{0, 0, 0, 0xff, 0, 0, 0, 0, 1})

	s := &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			w.Write(b)
			w.Write([]byte("ok"))
		}),
		ErrorLog: log.New(io.Discard, "", 0),
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			s.ServeConn(server)
			close(done)
		}()
		read := make(chan error, 1)
		go func() {
			rf := http2.NewFramer(nil, client)
			rf.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
			rf.SetMaxReadFrameSize(1 << 24) // the fuzzer may raise SETTINGS_MAX_FRAME_SIZE
			for {
				if _, err := rf.ReadFrame(); err != nil {
					var se http2.StreamError
					var ce http2.ConnectionError
					if errors.As(err, &se) || errors.As(err, &ce) || err == http2.ErrFrameTooLarge {
						read <- err
						io.Copy(io.Discard, client)
						return
					}
					read <- nil
					return
				}
			}
		}()
		client.SetWriteDeadline(time.Now().Add(time.Second))
		io.WriteString(client, http2.ClientPreface)
		cf := http2.NewFramer(client, nil)
		cf.WriteSettings()
		client.Write(in)
		client.SetWriteDeadline(time.Time{})
		time.Sleep(time.Millisecond)
		client.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("ServeConn still runs 5 s after the client closed")
		}
		if err := <-read; err != nil {
			t.Fatalf("the server sent a frame that does not parse: %v", err)
		}
	})
}
