package balancer

import (
	"encoding/hex"
	"testing"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

func TestStickyValue(t *testing.T) {
	clk := testkit.NewClock()
	p1 := NewPool(PoolOptions{Now: clk.Now})
	p2 := NewPool(PoolOptions{Now: clk.Now})
	a := p1.Endpoint("10.0.1.5:8080")
	v := StickyValue(a)
	if len(v) != 16 {
		t.Fatalf("StickyValue %q: length %d, want 16", v, len(v))
	}
	if _, err := hex.DecodeString(v); err != nil {
		t.Fatalf("StickyValue %q is not hex: %v", v, err)
	}
	if StickyValue(a) != v {
		t.Fatal("StickyValue changed between calls")
	}
	if got := StickyValue(p2.Endpoint("10.0.1.5:8080")); got != v {
		t.Fatalf("another pool (edge) gives %q, want %q", got, v)
	}
	if StickyValue(p1.Endpoint("10.0.1.6:8080")) == v {
		t.Fatal("two addresses share a sticky value")
	}
	k1 := StickyValue(NewPool(PoolOptions{StickyKey: []byte("one")}).Endpoint(a.Addr))
	k1again := StickyValue(NewPool(PoolOptions{StickyKey: []byte("one")}).Endpoint(a.Addr))
	k2 := StickyValue(NewPool(PoolOptions{StickyKey: []byte("two")}).Endpoint(a.Addr))
	if k1 == v || k1 == k2 || k1 != k1again {
		t.Fatalf("keyed values: unkeyed %s, key one %s and %s, key two %s", v, k1, k1again, k2)
	}
}

func TestFindSticky(t *testing.T) {
	clk := testkit.NewClock()
	eps := endpoints(NewPool(PoolOptions{Now: clk.Now}), 3)
	tests := []struct {
		name  string
		value string
		down  int // index to mark down first; -1 for none
		want  *Endpoint
	}{
		{"found", StickyValue(eps[1]), -1, eps[1]},
		{"found last", StickyValue(eps[2]), -1, eps[2]},
		{"unknown", "0123456789abcdef", -1, nil},
		{"empty", "", -1, nil},
		{"address is not a value", eps[0].Addr, -1, nil},
		{"unavailable", StickyValue(eps[1]), 1, nil},
		{"other one unavailable", StickyValue(eps[0]), 1, eps[0]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, e := range eps {
				e.SetHealthy(i != tt.down)
			}
			if got := FindSticky(eps, tt.value, clk.Now()); got != tt.want {
				t.Fatalf("FindSticky = %v, want %v", got, tt.want)
			}
		})
	}
	// Ejection counts as unavailable too, and the endpoint is found again
	// once it comes back.
	eps[0].SetHealthy(true)
	eps[0].Acquire()(0, ConnectFailure)
	if FindSticky(eps, StickyValue(eps[0]), clk.Now()) != nil {
		t.Fatal("found an ejected endpoint")
	}
	clk.Advance(DefaultBaseEjection)
	if FindSticky(eps, StickyValue(eps[0]), clk.Now()) != eps[0] {
		t.Fatal("endpoint not found after its ejection ended")
	}
}
