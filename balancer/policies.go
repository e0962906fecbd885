package balancer

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/swarmgate/swarmgate/route"
)

// Hint is what a policy may use from the request.
type Hint struct {
	ClientIP string // the client's address without port
}

// Policy picks one endpoint out of eps (whose elements are never nil). It
// returns nil when none is available. Implementations are safe for
// concurrent use, take no mutex and allocate nothing.
type Policy interface {
	Pick(eps []*Endpoint, h Hint, now time.Time) *Endpoint
}

// ErrUnknownPolicy is returned by New for a name it does not know.
var ErrUnknownPolicy = errors.New("unknown policy")

// New returns a fresh policy by its label name (route.Balancers). "cookie"
// picks like "p2c"; its stickiness is FindSticky and StickyValue, applied
// before the policy. "" is route.DefaultBalancer. Each call returns
// independent state (round-robin's counter).
func New(name string) (Policy, error) {
	if name == "" {
		name = route.DefaultBalancer
	}
	switch name {
	case route.BalancerRoundRobin:
		return new(RoundRobin), nil
	case route.BalancerLeastConn:
		return new(LeastConn), nil
	case route.BalancerP2C, route.BalancerCookie:
		return new(P2C), nil
	case route.BalancerIPHash:
		return new(IPHash), nil
	}
	return nil, fmt.Errorf("balancer: policy %q: %w", name, ErrUnknownPolicy)
}

// RoundRobin is round-robin over the available endpoints: an atomic counter
// chooses where to start, and unavailable endpoints are skipped.
type RoundRobin struct {
	next atomic.Uint64
}

func (r *RoundRobin) Pick(eps []*Endpoint, _ Hint, now time.Time) *Endpoint {
	n := uint64(len(eps))
	if n == 0 {
		return nil
	}
	t := now.UnixNano()
	start := r.next.Add(1) - 1
	for i := range n {
		if e := eps[(start+i)%n]; e.available(t) {
			// Move the counter past the skipped endpoints too, so the one
			// after an unavailable endpoint does not get its share as well.
			if i > 0 {
				r.next.Add(i)
			}
			return e
		}
	}
	return nil
}

// LeastConn picks the available endpoint with the fewest requests in
// flight. Ties are broken by reservoir sampling, uniformly at random, so
// idle endpoints share the load instead of the first one taking it all.
type LeastConn struct{}

func (LeastConn) Pick(eps []*Endpoint, _ Hint, now time.Time) *Endpoint {
	t := now.UnixNano()
	var best *Endpoint
	var least int64
	ties := 0
	for _, e := range eps {
		if !e.available(t) {
			continue
		}
		switch n := e.InFlight(); {
		case best == nil || n < least:
			best, least, ties = e, n, 1
		case n == least:
			ties++
			if rand.IntN(ties) == 0 {
				best = e
			}
		}
	}
	return best
}

// P2C is the power of two random choices over a peak-EWMA cost, as in
// Finagle and Envoy: it draws two distinct available endpoints at random and
// takes the cheaper, where cost = latency EWMA × (in flight + 1). The random
// draw keeps many edges from herding onto the one best endpoint; the cost
// steers away from endpoints that are slow or busy.
//
// An endpoint without a recent latency sample (new, or not chosen for a
// while) cannot be costed, so the pair is compared by in-flight count alone
// and the unmeasured endpoint wins a tie: it gets traffic and a sample.
type P2C struct{}

func (P2C) Pick(eps []*Endpoint, _ Hint, now time.Time) *Endpoint {
	t := now.UnixNano()
	// Reservoir sampling of two: one pass, uniform over the available pairs.
	var a, b *Endpoint
	seen := 0
	for _, e := range eps {
		if !e.available(t) {
			continue
		}
		seen++
		switch seen {
		case 1:
			a = e
		case 2:
			b = e
		default:
			switch rand.IntN(seen) {
			case 0:
				a = e
			case 1:
				b = e
			}
		}
	}
	if b == nil {
		return a
	}
	// The reservoir's slots are not symmetric (the first endpoint can only
	// be in a); shuffle them so ties favour neither.
	if rand.IntN(2) == 0 {
		a, b = b, a
	}
	return cheaper(a, b, t)
}

// costSlack and costFloor say how much costlier one endpoint must be than
// the other before p2c prefers the cheaper: twice as costly and by more than
// a millisecond. Latency averages of healthy tasks differ by noise (a GC
// pause, a cache miss); preferring the cheaper on noise alone would pile light
// traffic onto whichever task happened to answer fastest, and one pause would
// starve a task until its sample went stale.
const (
	costSlack = 2
	costFloor = float64(time.Millisecond)
)

// cheaper returns the endpoint with the lower cost, a on a tie. Costs that
// are not far apart (costSlack, costFloor) tie and are compared by in-flight
// count.
func cheaper(a, b *Endpoint, now int64) *Endpoint {
	la, lb := a.recentLatency(now), b.recentLatency(now)
	ia, ib := a.InFlight(), b.InFlight()
	if la == 0 || lb == 0 {
		if ia < ib || (ia == ib && la == 0) {
			return a
		}
		return b
	}
	// float64: latency in ns times a large in-flight count could overflow int64.
	ca, cb := float64(la)*float64(ia+1), float64(lb)*float64(ib+1)
	switch {
	case ca*costSlack < cb && cb-ca > costFloor:
		return a
	case cb*costSlack < ca && ca-cb > costFloor:
		return b
	case ib < ia:
		return b
	}
	return a
}

// IPHash is rendezvous (highest random weight) hashing of the client IP over
// the available endpoints: every endpoint gets a pseudo-random score for the
// client and the highest score wins. When an endpoint leaves, only its own
// clients move; when it comes back, they return. The hash is fixed, not
// seeded, so every edge maps a client the same way.
type IPHash struct{}

func (IPHash) Pick(eps []*Endpoint, h Hint, now time.Time) *Endpoint {
	t := now.UnixNano()
	key := fnv64a(h.ClientIP)
	var best *Endpoint
	var top uint64
	for _, e := range eps {
		if !e.available(t) {
			continue
		}
		if s := mix64(key ^ e.hash); best == nil || s > top {
			best, top = e, s
		}
	}
	return best
}

// mix64 is MurmurHash3's 64-bit finalizer: it spreads every input bit over
// the output, so scores of one client on different endpoints are unrelated.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

var (
	_ Policy = (*RoundRobin)(nil)
	_ Policy = (*LeastConn)(nil)
	_ Policy = (*P2C)(nil)
	_ Policy = (*IPHash)(nil)
)
