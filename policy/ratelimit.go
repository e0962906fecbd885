package policy

import (
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/swarmgate/swarmgate/route"
)

// defaultMaxClients bounds the clients one route's rate limit tracks.
const defaultMaxClients = 1 << 16

// limiter is one route's rate limit: the generic cell rate algorithm
// (GCRA, ITU-T I.371), a token bucket kept as one number per client, the
// theoretical arrival time of its next request. A client whose time has
// passed is in the same state as one never seen, so its entry can go: that
// is how idle clients expire, and why memory stays bounded (at most max
// entries; when full, the expired ones go, then arbitrary ones, which only
// hands those clients a fresh burst).
type limiter struct {
	rate  route.Rate
	every int64 // nanoseconds between requests on average
	tau   int64 // how far ahead of its schedule a client may be: the burst
	now   func() time.Time
	max   int

	// mu guards tat.
	mu  sync.Mutex
	tat map[netip.Addr]int64 // Unix nanoseconds
}

func newLimiter(r route.Rate, now func() time.Time, max int) *limiter {
	every := int64(r.Per) / int64(r.N)
	return &limiter{rate: r, every: every, tau: every * int64(r.Burst-1), now: now, max: max, tat: map[netip.Addr]int64{}}
}

// allow takes one request of client a; when refused, retry is how long
// until it would be allowed.
func (l *limiter) allow(a netip.Addr) (ok bool, retry time.Duration) {
	now := l.now().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	t, seen := l.tat[a]
	t = max(t, now)
	if wait := t - l.tau - now; wait > 0 {
		return false, time.Duration(wait)
	}
	if !seen && len(l.tat) >= l.max {
		l.evictLocked(now)
	}
	l.tat[a] = t + l.every
	return true, 0
}

// evictLocked makes room: it drops the clients that are back to a full
// burst, and when that frees less than a quarter, arbitrary others.
func (l *limiter) evictLocked(now int64) {
	for a, t := range l.tat {
		if t <= now {
			delete(l.tat, a)
		}
	}
	for a := range l.tat { // map order is random
		if len(l.tat) <= l.max*3/4 {
			break
		}
		delete(l.tat, a)
	}
}

// clients is the number of clients tracked, for tests.
func (l *limiter) clients() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.tat)
}

// rateKey is the address a client is counted under: IPv6 clients by their
// /64, which is what one host or one home gets, so that a client cannot
// take a new address for every request.
func rateKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// rateLimit answers 429 with Retry-After (whole seconds, rounded up) to a
// client over its route's rate.
func rateLimit(l *limiter, next http.Handler, reply replyFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, _ := clientAddr(r)
		if ok, retry := l.allow(rateKey(a)); !ok {
			secs := int64((retry + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
			reply(w, r, http.StatusTooManyRequests, "rate limit "+strconv.Itoa(l.rate.N)+"/"+unit(l.rate.Per)+" exceeded")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func unit(per time.Duration) string {
	switch per {
	case time.Minute:
		return "m"
	case time.Hour:
		return "h"
	}
	return "s"
}

// Limits keeps the rate-limit state of routes by route ID across table
// builds. It is safe for concurrent use.
type Limits struct {
	// mu guards m.
	mu sync.Mutex
	m  map[string]*limiter
}

// NewLimits returns an empty Limits.
func NewLimits() *Limits { return &Limits{m: map[string]*limiter{}} }

// get returns the limiter of route id, a new one when the route had none
// or had another rate.
func (ls *Limits) get(id string, r route.Rate, now func() time.Time) *limiter {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l := ls.m[id]; l != nil && l.rate == r {
		return l
	}
	l := newLimiter(r, now, defaultMaxClients)
	ls.m[id] = l
	return l
}

// Keep forgets the state of the routes for which keep is false.
func (ls *Limits) Keep(keep func(id string) bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for id := range ls.m {
		if !keep(id) {
			delete(ls.m, id)
		}
	}
}
