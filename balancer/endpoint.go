// Package balancer chooses an upstream endpoint for each request: the
// load-balancing policies, weighted groups for canary and blue-green splits,
// cookie stickiness, and the passive and active health that decides which
// endpoints may be chosen.
//
// Endpoint state lives in a Pool keyed by address, so a routing-table
// rebuild reuses it and loses no statistic. The request path takes no mutex:
// counters are atomics and policies only read them.
package balancer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmgate/swarmgate/internal/opt"
)

// Passive-health defaults, used where PoolOptions leaves a field zero.
const (
	DefaultMaxFailures  = 3
	DefaultBaseEjection = time.Second
	DefaultMaxEjection  = 30 * time.Second
)

// How p2c's latency estimate ages. Without this, an endpoint that p2c
// avoids gets no samples, so its estimate never comes down: a task whose
// first request was slow (a new connection, a cold start) or that paused
// once kept almost no traffic for seconds after it was fast again (e2e saw
// 6 of 300 requests go to the third task after a scale from 1 to 3).
//
// So the estimate fades while no sample arrives: it halves every half-life
// (Finagle's and Linkerd's peak EWMA decay), both as p2c reads it and as
// the next sample meets it. The half-life grows with the samples the
// endpoint has given, from decayHalfLife/warmupSamples for the first one
// to decayHalfLife from the warmupSamples-th on: a new endpoint's first
// samples are the least typical, so a slow start costs it milliseconds of
// traffic, while a really slow endpoint is soon known as such and probed
// only every few half-lives.
//
// decayHalfLife trades the two ways to get it wrong. A slow response (a
// pause, a busy host) keeps a healthy endpoint out for the half-lives its
// estimate needs to come back into the tie band, 3 to 4 (about 175 ms) after
// a 30 ms response among 0.4 ms ones; a really slow endpoint gets a probe
// every few half-lives, 4 to 16 a second (under 1% of sequential traffic
// in TestP2CSlowEndpointStillAvoided). In a simulation of sequential
// traffic, 100 ms starved healthy tasks for a third of a second after one
// slow response, and 15 ms gave a 100 ms task a quarter of the requests.
//
// staleAfter is how long a sample counts at all: an endpoint with no sample
// for that long (twenty half-lives: nothing is left of it) is unmeasured
// again, compared by load alone and preferred on a tie.
const (
	decayHalfLife = 50 * time.Millisecond
	warmupSamples = 10
	staleAfter    = time.Second
)

// Outcome is how a request to an endpoint ended, as passive health sees it.
type Outcome int

const (
	// Success is any response the upstream produced by itself, including
	// 4xx: the endpoint works.
	Success Outcome = iota
	// ConnectFailure means nothing was sent: the dial or TLS handshake
	// failed. It ejects the endpoint at once.
	ConnectFailure
	// Failure is an upstream error after the request was sent: a broken
	// connection, a 5xx, a timeout. MaxFailures in a row eject the endpoint.
	Failure
	// Abandoned is an exchange the client ended or spoiled (it went away,
	// or sent a malformed body): it says nothing about the endpoint, so it
	// counts neither for nor against it and gives no latency sample.
	Abandoned
)

func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case ConnectFailure:
		return "connect-failure"
	case Failure:
		return "failure"
	case Abandoned:
		return "abandoned"
	}
	return "unknown"
}

// Endpoint is one upstream address and its live statistics. One Endpoint
// exists per address in a Pool and is shared by every table and route that
// names the address, so a table rebuild loses no statistic. Create it with
// Pool.Endpoint; the zero value is not usable.
type Endpoint struct {
	Addr string // host:port

	pool      *Pool
	sticky    string // StickyValue, computed once
	hash      uint64 // FNV-1a of Addr, the endpoint's side of rendezvous hashing
	releaseFn func(time.Duration, Outcome)
	releaseAt func(time.Time, time.Duration, Outcome)

	inflight atomic.Int64
	ewma     atomic.Int64 // latency EWMA in nanoseconds as of sampled; 0 means no sample yet
	sampled  atomic.Int64 // unix nanoseconds of the last latency sample; 0 means never
	samples  atomic.Int32 // latency samples so far, counted up to warmupSamples

	// Passive health. fails counts consecutive Failure outcomes; ejections
	// counts consecutive ejections and sets the backoff; a Success resets both.
	fails        atomic.Int32
	ejections    atomic.Int32
	ejectedUntil atomic.Int64 // unix nanoseconds; available again from then on
	// probing: the endpoint was ejected and has given no Success since.
	// Back from its ejection, it takes one request at a time (half-open,
	// as a circuit breaker): a task that is still gone costs the one
	// request that finds out (a connect that fails over), not every request
	// that picks it while that connect is pending.
	probing atomic.Bool

	down atomic.Bool // the last active health check failed
}

// InFlight is the number of requests acquired and not yet released.
func (e *Endpoint) InFlight() int64 { return e.inflight.Load() }

// Latency is the exponentially weighted moving average of the time to
// response headers, as of the last response. It follows a slower response
// quickly and a faster one gradually (peak EWMA), so a slowing endpoint
// loses traffic quickly. Zero means no response has been measured yet.
// (What p2c compares is this average faded by the time since; see
// decayHalfLife.)
func (e *Endpoint) Latency() time.Duration { return time.Duration(e.ewma.Load()) }

// Available reports whether a policy may choose the endpoint: it is not
// ejected by passive health and not marked down by the active health check,
// and, back from an ejection with no Success since, it has no request in
// flight (one probe at a time).
func (e *Endpoint) Available(now time.Time) bool { return e.available(now.UnixNano()) }

func (e *Endpoint) available(now int64) bool {
	if e.down.Load() || now < e.ejectedUntil.Load() {
		return false
	}
	return !e.probing.Load() || e.inflight.Load() == 0
}

// SetHealthy records the result of an active health check.
func (e *Endpoint) SetHealthy(ok bool) { e.down.Store(!ok) }

// LeastEjected returns, among endpoints that the active health check has not
// marked down, the one whose passive ejection ends first; nil if there is
// none. It is the fallback when every endpoint is ejected (Envoy's "panic
// routing"): ejections after a blip, or of a task that was not listening
// yet, must not turn into a 503 for the whole ejection window.
func LeastEjected(eps []*Endpoint) *Endpoint {
	var best *Endpoint
	var until int64
	for _, e := range eps {
		if e.down.Load() {
			continue
		}
		if u := e.ejectedUntil.Load(); best == nil || u < until {
			best, until = e, u
		}
	}
	return best
}

// Acquire counts a request in flight. The returned func must be called
// exactly once, when the request finishes, with its latency (time to
// response headers) and outcome. It allocates nothing.
func (e *Endpoint) Acquire() (release func(latency time.Duration, o Outcome)) {
	e.inflight.Add(1)
	return e.releaseFn
}

// AcquireTimed is Acquire for a caller that reads the clock when the
// request finishes (for its latency): its release takes that reading,
// which stands for the pool's clock when both are the system's (see
// Pool.Now), so that the release reads no clock of its own. A reading of
// another clock (or the zero Time) makes the release read the pool's.
func (e *Endpoint) AcquireTimed() (release func(now time.Time, latency time.Duration, o Outcome)) {
	e.inflight.Add(1)
	return e.releaseAt
}

func (e *Endpoint) release(latency time.Duration, o Outcome) {
	e.finish(e.pool.now().UnixNano(), latency, o)
}

func (e *Endpoint) releaseTimed(now time.Time, latency time.Duration, o Outcome) {
	if !e.pool.system || !SystemClock(now) {
		now = e.pool.now()
	}
	e.finish(now.UnixNano(), latency, o)
}

// finish is a release at now (unix nanoseconds).
func (e *Endpoint) finish(now int64, latency time.Duration, o Outcome) {
	e.inflight.Add(-1)
	switch o {
	case Success:
		e.observe(latency, now, false)
		e.fails.Store(0)
		e.ejections.Store(0)
		e.probing.Store(false)
	case Failure:
		// A fast error must not make the endpoint look attractive: failures
		// may raise the latency estimate but never lower it.
		e.observe(latency, now, true)
		if e.fails.Add(1) >= int32(e.pool.maxFailures) {
			e.eject(now)
		}
	case ConnectFailure:
		e.eject(now)
	}
}

// observe folds one latency sample into the EWMA, quicker to rise than to
// fall: a slower sample moves the average half of the way up, a faster one a
// quarter of the way down. (A pure peak, where one slow sample replaces the
// average, lets a single pause starve an endpoint.) The average it starts
// from is the old one faded by the time since the last sample, so after a
// pause in traffic a new sample counts for more.
func (e *Endpoint) observe(latency time.Duration, now int64, raiseOnly bool) {
	s := max(int64(latency), 1) // 0 is reserved for "no sample"
	n := e.samples.Load()
	for {
		old, at := e.ewma.Load(), e.sampled.Load()
		cur := old
		if old != 0 {
			cur = decayed(old, now-at, n)
		}
		v := s
		switch {
		case old == 0:
		case s < cur:
			if raiseOnly {
				v = cur
				break
			}
			v = cur + (s-cur)/4
		default:
			v = cur + (s-cur)/2
		}
		if e.ewma.CompareAndSwap(old, v) {
			break
		}
	}
	e.sampled.Store(now)
	if n < warmupSamples {
		e.samples.Add(1) // a race may count past warmupSamples; decayed caps it
	}
}

// recentLatency is the latency p2c may use at now: the EWMA faded by the
// time since its last sample, and 0 when there is no sample or the last one
// is older than staleAfter. A faded estimate stays at least 1 ns, so that 0
// keeps meaning "unmeasured".
func (e *Endpoint) recentLatency(now int64) int64 {
	at := e.sampled.Load()
	if at == 0 || now-at > int64(staleAfter) {
		return 0
	}
	return decayed(e.ewma.Load(), now-at, e.samples.Load())
}

// decayed is the estimate v of an endpoint with n samples, age nanoseconds
// after it was made: halved for every half-life in age, the half-life
// growing with n up to decayHalfLife (see decayHalfLife), and at least 1.
// Between two halvings it falls linearly, within 6% of the exponential
// curve, for a fraction of the cost of math.Exp2 on every pick.
func decayed(v, age int64, n int32) int64 {
	if age <= 0 || v == 0 {
		return v
	}
	n = min(max(n, 1), warmupSamples)
	halfLife := int64(decayHalfLife) * int64(n) / warmupSamples
	halves := age / halfLife
	if halves >= 63 {
		return 1
	}
	v >>= halves
	frac := float64(age-halves*halfLife) / float64(halfLife)
	return max(v-int64(float64(v)*frac/2), 1)
}

// eject takes the endpoint out of rotation for a backoff that doubles with
// each consecutive ejection. Failures reported while it is already ejected
// (requests that were in flight) do not extend or double it.
func (e *Endpoint) eject(now int64) {
	e.fails.Store(0)
	until := e.ejectedUntil.Load()
	if now < until {
		return
	}
	n := e.ejections.Load() + 1
	d := e.pool.baseEjection
	for i := int32(1); i < n && d < e.pool.maxEjection; i++ {
		d *= 2
	}
	d = min(d, e.pool.maxEjection)
	if e.ejectedUntil.CompareAndSwap(until, now+int64(d)) {
		e.ejections.Add(1)
		e.probing.Store(true)
	}
}

// PoolOptions configure a Pool. The zero value is ready to use.
type PoolOptions struct {
	// Now is the clock. If nil, time.Now; tests pass a fake clock.
	Now func() time.Time

	// Passive health: a ConnectFailure ejects an endpoint at once, and so do
	// MaxFailures consecutive Failure outcomes. The first ejection lasts
	// BaseEjection, each consecutive one twice as long up to MaxEjection;
	// the endpoint then comes back on its own, and a Success resets the
	// backoff. Zero values are DefaultMaxFailures, DefaultBaseEjection and
	// DefaultMaxEjection.
	MaxFailures  int
	BaseEjection time.Duration
	MaxEjection  time.Duration

	// StickyKey, if set, keys the hash behind StickyValue (HMAC-SHA256), so
	// a client cannot recover a task address by hashing candidates. Edges
	// that share clients must share the key. If nil the hash is unkeyed:
	// stable everywhere, but an address can be found by brute force over
	// the private address space.
	StickyKey []byte
}

// Pool is the registry of endpoints keyed by address. Endpoint and Prune
// take a mutex and belong to table builds; the request path only uses the
// Endpoints they return.
type Pool struct {
	now          func() time.Time
	system       bool // now is the system clock: its readings have a monotonic reading
	maxFailures  int
	baseEjection time.Duration
	maxEjection  time.Duration
	stickyKey    []byte

	mu sync.Mutex // guards m
	m  map[string]*Endpoint
}

// NewPool returns an empty Pool.
func NewPool(o PoolOptions) *Pool {
	p := &Pool{
		now:          o.Now,
		maxFailures:  o.MaxFailures,
		baseEjection: o.BaseEjection,
		maxEjection:  o.MaxEjection,
		stickyKey:    slices.Clone(o.StickyKey),
		m:            make(map[string]*Endpoint),
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.system = SystemClock(p.now())
	opt.Positive(&p.maxFailures, DefaultMaxFailures)
	opt.Positive(&p.baseEjection, DefaultBaseEjection)
	opt.Positive(&p.maxEjection, DefaultMaxEjection)
	p.maxEjection = max(p.maxEjection, p.baseEjection)
	return p
}

// Now reads the pool's clock. A clock whose readings carry a monotonic
// clock reading is taken for the system's (time.Now, or a clock that wraps
// it, as a test's counting clock does); a test's fake clock, whose readings
// are made by time.Unix or time.Date, is not.
func (p *Pool) Now() time.Time { return p.now() }

// SystemClock reports whether t is a reading of the system clock: it
// carries a monotonic clock reading, as time.Now's do (and those of a
// clock that wraps time.Now, or derived from one by Add); a test's fake
// clock, made of time.Unix or time.Date values, has none. Only such a
// reading may stand for time.Now where the system clock runs (deadlines,
// idle times, a release's time). Round(0) strips the monotonic reading,
// and only then changes t.
func SystemClock(t time.Time) bool { return t != t.Round(0) }

// Endpoint returns the endpoint for addr, creating it on first use.
func (p *Pool) Endpoint(addr string) *Endpoint {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.m[addr]; e != nil {
		return e
	}
	e := &Endpoint{Addr: addr, pool: p, sticky: p.stickyValue(addr), hash: fnv64a(addr)}
	e.releaseFn = e.release // one func value per endpoint keeps Acquire allocation-free
	e.releaseAt = e.releaseTimed
	p.m[addr] = e
	return e
}

// Prune drops the endpoints whose address keep rejects, typically those no
// table uses any more, and returns the dropped addresses sorted. Tables that
// still hold a dropped Endpoint keep working with it; a later Endpoint call
// for the address starts fresh.
func (p *Pool) Prune(keep func(addr string) bool) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var dropped []string
	for addr := range p.m {
		if !keep(addr) {
			dropped = append(dropped, addr)
			delete(p.m, addr)
		}
	}
	slices.Sort(dropped)
	return dropped
}

// Remove takes the endpoints of addrs out of the pool and returns the
// addresses it had, sorted: Prune for a caller that knows what left.
func (p *Pool) Remove(addrs []string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var dropped []string
	for _, a := range addrs {
		if _, ok := p.m[a]; ok {
			delete(p.m, a)
			dropped = append(dropped, a)
		}
	}
	slices.Sort(dropped)
	return dropped
}

// Len is the number of endpoints in the pool.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}

// stickyValue is 16 hex digits of SHA-256 (keyed when the pool has a key):
// opaque, stable per address, and short enough for a cookie. The domain
// prefix keeps it from matching other hashes of the same address.
func (p *Pool) stickyValue(addr string) string {
	const domain = "swarmgate-sticky\x00"
	var sum []byte
	if p.stickyKey != nil {
		m := hmac.New(sha256.New, p.stickyKey)
		m.Write([]byte(domain + addr))
		sum = m.Sum(nil)
	} else {
		s := sha256.Sum256([]byte(domain + addr))
		sum = s[:]
	}
	return hex.EncodeToString(sum[:8])
}

// fnv64a is the 64-bit FNV-1a hash. It is fixed, not seeded per process, so
// every edge and every restart maps a client to the same endpoint.
func fnv64a(s string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	return h
}
