package control

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"testing"

	"github.com/swarmgate/swarmgate/route"
)

// BenchmarkUpdate publishes a version in which one route's endpoints moved,
// among n routes: the control plane's cost per change.
func BenchmarkUpdate(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s := NewServer(ServerOptions{History: 64})
			cfg := manyRoutes(n, 0)
			s.Update(cfg)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				cfg.Routes[i%n].Endpoints = []string{fmt.Sprintf("10.200.%d.%d:8080", i/250%250, i%250)}
				s.Update(cfg)
			}
		})
	}
}

// BenchmarkClientDelta applies a one-endpoint delta among n routes and
// builds the Config: the edge's cost per change, before its table rebuild.
func BenchmarkClientDelta(b *testing.B) {
	trim := func(f []byte) []byte { return bytes.TrimSuffix(f, []byte("\n")) }
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			cfgA := manyRoutes(n, 0)
			cfgB := manyRoutes(n, 0)
			cfgB.Routes[0].Endpoints = []string{"10.201.0.1:8080"}
			s := NewServer(ServerOptions{})
			s.Update(cfgA)
			snap := trim(s.cur.Load().snapshotFrame())
			s.Update(cfgB)
			ab := trim(s.cur.Load().live)
			s.Update(cfgA)
			ba := trim(s.cur.Load().live)
			c, err := NewClient(ClientOptions{Addrs: []string{"tcp://control:7070"}})
			if err != nil {
				b.Fatal(err)
			}
			nop := func(route.Config) {}
			if _, err := c.apply(snap, nop); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				f := ab
				if i%2 == 1 {
					f = ba
				}
				if _, err := c.apply(f, nop); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestSnapshotSize logs what a snapshot of many routes weighs, plain and
// gzipped: the figure that decides whether compression is worth it.
func TestSnapshotSize(t *testing.T) {
	for _, n := range []int{1000, 10000} {
		s := NewServer(ServerOptions{})
		s.Update(manyRoutes(n, 0))
		snap := s.cur.Load().snapshotFrame()
		var z bytes.Buffer
		w := gzip.NewWriter(&z)
		w.Write(snap)
		w.Close()
		t.Logf("%d routes: snapshot %d bytes (%d per route), gzipped %d (%.0f%%)", n, len(snap), len(snap)/n, z.Len(), 100*float64(z.Len())/float64(len(snap)))
	}
}
