package proxy

import (
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/route"
)

// BenchmarkUpdate swaps in a table of n HTTP routes that differs from the
// one in force by one endpoint: what one change costs an edge's proxy,
// when the Config does not say what changed (every route is compared).
func BenchmarkUpdate(b *testing.B) { benchUpdate(b, false) }

// BenchmarkUpdateHinted is BenchmarkUpdate with Configs whose Delta names
// the route that changed, as the control client's do.
func BenchmarkUpdateHinted(b *testing.B) { benchUpdate(b, true) }

func benchUpdate(b *testing.B, hinted bool) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			cfgs := [2]route.Config{}
			for v := range cfgs {
				for i := range n {
					cfgs[v].Routes = append(cfgs[v].Routes, route.Route{
						Service: fmt.Sprintf("svc%05d", i), Hosts: []string{fmt.Sprintf("svc%05d.bench.test", i)},
						Path: "/", Port: 8000, Weight: route.DefaultWeight, Balancer: route.DefaultBalancer,
						Backend: route.BackendTask, TLS: route.TLSOff, BackendTLS: route.BackendTLSOff,
						Timeout: route.DefaultTimeout, CreatedAt: time.Unix(int64(i), 0),
						Endpoints: []string{fmt.Sprintf("10.%d.%d.%d:8000", i/250, i%250, 1+v), fmt.Sprintf("10.%d.%d.2:8000", i/250, i%250)},
					})
				}
			}
			cfgs[1].Routes = append([]route.Route(nil), cfgs[0].Routes...)
			cfgs[1].Routes[0].Endpoints = []string{"10.250.0.1:8000"}
			if hinted {
				id := []string{cfgs[1].Routes[0].ID()}
				cfgs[0].Gen, cfgs[0].Delta = 1, &route.Delta{From: 2, Routes: id}
				cfgs[1].Gen, cfgs[1].Delta = 2, &route.Delta{From: 1, Routes: id}
			}
			p := New(Options{Logger: zap.NewNop()})
			defer p.Close()
			p.Update(cfgs[0])
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				p.Update(cfgs[(i+1)%2])
			}
		})
	}
}
