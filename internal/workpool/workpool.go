// Package workpool runs functions on goroutines that outlive them, so that
// the stack a function grows stays grown for the next one. A server that
// starts a goroutine per request (net/http's HTTP/2 streams, quic-go's
// HTTP/3 streams) otherwise grows a fresh stack to tens of KiB for every
// request that routes and proxies (runtime.newstack, copystack), and Go
// shrinks a stack only at a garbage collection, by half each time.
package workpool

import (
	"runtime"
	"slices"
	"sync"
	"time"
)

// DefaultIdle is how long a worker waits for its next function when
// Pool.Idle is zero.
const DefaultIdle = 10 * time.Second

// Pool runs functions on workers: a worker that finished one waits for the
// next, the most recently used first; one idle for Idle exits (within half
// of Idle after it), and Close ends the idle ones at once. The zero Pool is
// ready to use; a Pool must not be copied after its first Run.
type Pool struct {
	// Idle is how long a worker waits for a function before it exits: at
	// least Idle, at most 1.5 times Idle (a sweep every Idle/2 ends the
	// workers that stayed idle through two sweeps before it, so that a
	// worker going idle reads no clock). If zero or negative, DefaultIdle.
	// It must not change after the first Run.
	Idle time.Duration

	// mu guards idle, closed, sweep, armed, sweeps and the workers' since.
	mu     sync.Mutex
	idle   []*worker // most recently used last
	closed bool
	sweep  *time.Timer // ends the workers idle for Idle (sweepIdle)
	armed  bool        // sweep is set to fire
	sweeps uint64      // sweeps so far
}

// Result is what a function run on a worker left: what it returned, or
// the value it panicked with and the worker's stack at the panic, or that
// it called runtime.Goexit (which ends its worker).
type Result struct {
	OK     bool   // f's result; false after a panic or a Goexit
	Panic  any    // the recovered value, nil if f returned
	Stack  []byte // the panicking goroutine's stack, nil if f returned
	Goexit bool   // f called runtime.Goexit (t.FailNow in a test)
}

type worker struct {
	jobs  chan job // buffered: a job is never waited for by its sender; closed to end the worker
	since uint64   // the pool's sweeps when it went idle
}

// job is one function to run; its Result goes to done. A job of Go has
// goFn instead, and no done.
type job struct {
	f    func() bool
	done chan<- Result
	goFn func()
}

// Run runs f on a worker and returns what it returned. A panic in f does
// not unwind the caller: it comes back in the Result, with its stack, for
// the caller to handle or raise again on its own goroutine. done carries
// the Result back; it must have room for one and nothing else may receive
// from it meanwhile. A caller that runs many functions passes the same one
// each time; if nil, Run makes one. After Close, f still runs, on a worker
// that exits after it.
func (p *Pool) Run(f func() bool, done chan Result) Result {
	if done == nil {
		done = make(chan Result, 1)
	}
	p.worker().jobs <- job{f: f, done: done}
	return <-done
}

// Go runs f on a worker without waiting for it: for a server that starts
// one function per request from a loop that must go on reading (an HTTP/2
// connection's frames). f must recover its own panics: one that escapes
// it is recovered and dropped, its worker kept. After Close, f still runs,
// on a worker that exits after it.
func (p *Pool) Go(f func()) {
	p.worker().jobs <- job{goFn: f}
}

// worker returns the idle worker that ran last, or a new one.
func (p *Pool) worker() *worker {
	p.mu.Lock()
	var w *worker
	if n := len(p.idle); n > 0 {
		w = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
	}
	p.mu.Unlock()
	if w == nil {
		w = &worker{jobs: make(chan job, 1)}
		go p.loop(w)
	}
	return w
}

// Close ends the idle workers; busy ones end after their function. A Run
// after Close still runs its function.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, w := range p.idle {
		close(w.jobs)
	}
	p.idle = nil
	if p.sweep != nil {
		p.sweep.Stop()
		p.armed = false
	}
}

func (p *Pool) idleFor() time.Duration {
	if p.Idle > 0 {
		return p.Idle
	}
	return DefaultIdle
}

// loop serves w's jobs until its channel is closed: by Close, or by
// sweepIdle once it has been idle for the pool's Idle. A worker waits with
// a plain receive, not a select with a timer of its own: one timer per
// pool ends the idle ones.
func (p *Pool) loop(w *worker) {
	// running is the done of the job in f, for a Goexit: it ends the
	// worker, not the job's caller, who is told.
	var running chan<- Result
	defer func() {
		if running != nil {
			running <- Result{Goexit: true}
		}
	}()
	for j := range w.jobs {
		var r Result
		if j.goFn != nil {
			runGo(j.goFn)
		} else {
			running = j.done
			r = run(j.f)
			running = nil
		}
		// Idle before the caller is answered, so that a caller's next
		// Run finds this worker (a job sent meanwhile waits in jobs).
		p.mu.Lock()
		closed := p.closed
		if !closed {
			w.since = p.sweeps
			p.idle = append(p.idle, w)
			p.armLocked()
		}
		p.mu.Unlock()
		if j.done != nil {
			j.done <- r
		}
		if closed {
			return
		}
	}
}

// armLocked sets the sweep to fire in Idle/2 while there are idle
// workers, unless it is set already.
func (p *Pool) armLocked() {
	if p.armed || len(p.idle) == 0 {
		return
	}
	p.armed = true
	d := p.idleFor() / 2
	if p.sweep == nil {
		p.sweep = time.AfterFunc(d, p.sweepIdle)
	} else {
		p.sweep.Reset(d)
	}
}

// sweepIdle ends the workers that stayed idle through the two sweeps
// before this one (sweeps are Idle/2 apart or more, the first after a
// worker went idle at most Idle/2 later: an ended worker waited between
// Idle and 1.5 Idle, or longer when the timer is late), and sets the
// sweep for the next. The idle list is in the order the workers went idle.
func (p *Pool) sweepIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed = false
	if p.closed {
		return
	}
	p.sweeps++
	n := 0
	for n < len(p.idle) && p.sweeps-p.idle[n].since >= 3 {
		close(p.idle[n].jobs)
		n++
	}
	p.idle = slices.Delete(p.idle, 0, n)
	p.armLocked()
}

// runGo calls a function of Go, dropping a panic it let escape.
func runGo(f func()) {
	defer func() { _ = recover() }()
	f()
}

// run calls f, recovering a panic with the stack it happened on.
func run(f func() bool) (r Result) {
	defer func() {
		if v := recover(); v != nil {
			buf := make([]byte, 64<<10)
			r = Result{Panic: v, Stack: buf[:runtime.Stack(buf, false)]}
		}
	}()
	return Result{OK: f()}
}
