package balancer

import (
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// BenchmarkPick measures each policy over 10 measured endpoints, two of them
// unavailable, both on one goroutine and from all of them at once.
func BenchmarkPick(b *testing.B) {
	clk := testkit.NewClock()
	eps := endpoints(NewPool(PoolOptions{Now: clk.Now}), 10)
	for _, e := range eps {
		e.Acquire()(time.Millisecond, Success)
	}
	eps[3].SetHealthy(false)
	eps[7].SetHealthy(false)
	h := Hint{ClientIP: "203.0.113.7"}
	clk.Advance(50 * time.Millisecond) // p2c fades the samples' latency: pick after them
	now := clk.Now()
	for _, name := range policyNames[:4] {
		pol, _ := New(name)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				pol.Pick(eps, h, now)
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					pol.Pick(eps, h, now)
				}
			})
		})
	}
}

func BenchmarkAcquireRelease(b *testing.B) {
	e := NewPool(PoolOptions{}).Endpoint("10.0.0.1:80")
	b.ReportAllocs()
	for b.Loop() {
		e.Acquire()(time.Millisecond, Success)
	}
}

func BenchmarkFindSticky(b *testing.B) {
	clk := testkit.NewClock()
	eps := endpoints(NewPool(PoolOptions{Now: clk.Now}), 10)
	v := StickyValue(eps[9])
	now := clk.Now()
	b.ReportAllocs()
	for b.Loop() {
		FindSticky(eps, v, now)
	}
}

func BenchmarkWeightedPick(b *testing.B) {
	w := NewWeighted([]string{"stable", "canary"}, []int{90, 10})
	b.ReportAllocs()
	for b.Loop() {
		w.Pick()
	}
}
