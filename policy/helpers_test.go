package policy

import (
	"io"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func newGzipReader(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) }

// decodeStream returns a reader of r decoded from enc.
func decodeStream(t *testing.T, enc string, r io.Reader) io.Reader {
	t.Helper()
	switch enc {
	case Gzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		return zr
	case Zstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(zr.Close)
		return zr
	case Brotli:
		return brotli.NewReader(r)
	}
	t.Fatalf("no decoder for %q", enc)
	return nil
}

func decode(t *testing.T, enc string, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(decodeStream(t, enc, r))
	if err != nil {
		t.Fatalf("%s: %v", enc, err)
	}
	return b
}

// sampleHeap records the largest HeapInuse in peak until the returned
// func is called, which returns HeapInuse at the start.
func sampleHeap(peak *atomic.Uint64) (stop func() uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	return func() uint64 { close(done); <-finished; return base }
}
