package h1serve

import (
	"runtime"
	"slices"
	"sync"
	"time"
)

// workers run requests for the connections of a Server, so that a
// connection's own goroutine, which waits between requests, keeps the small
// stack of a 1-byte read: a request through the proxy grows the stack it
// runs on to tens of KiB (routing, the upstream exchange), and Go shrinks a
// stack only at a garbage collection, by half each time. A worker keeps its
// grown stack for the next request; a worker idle for workerIdle exits, and
// idle ones exit at once when the Server shuts down.
type workers struct {
	mu     sync.Mutex
	idle   []*worker // most recently used last
	closed bool
}

// workerIdle is how long a worker waits for a request before it exits.
const workerIdle = 10 * time.Second

type worker struct {
	jobs chan job  // buffered: a job is never waited for by its sender
	last time.Time // when its last job ended
}

// job is one request to serve: f's result, or a panic's value and stack,
// go to done.
type job struct {
	f    func() bool
	done chan<- result
}

type result struct {
	ok    bool
	panic any
	stack []byte
}

// run runs f on a worker and returns what it returned; a panic in f comes
// back in the result, with its stack. done is the caller's, reused.
func (w *workers) run(f func() bool, done chan result) result {
	w.mu.Lock()
	var wk *worker
	if n := len(w.idle); n > 0 {
		wk = w.idle[n-1]
		w.idle[n-1] = nil
		w.idle = w.idle[:n-1]
	}
	w.mu.Unlock()
	if wk == nil {
		wk = &worker{jobs: make(chan job, 1)}
		go w.loop(wk)
	}
	wk.jobs <- job{f, done}
	return <-done
}

// loop serves wk's jobs until it has been idle for workerIdle or the
// workers are closed. Its timer is not reset per job: when it fires, a
// worker that served since waits for the rest of its idle time.
func (w *workers) loop(wk *worker) {
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		select {
		case j, ok := <-wk.jobs:
			if !ok {
				return
			}
			r := serveJob(j.f)
			wk.last = time.Now()
			j.done <- r
			w.mu.Lock()
			if w.closed {
				w.mu.Unlock()
				return
			}
			w.idle = append(w.idle, wk)
			w.mu.Unlock()
		case <-t.C:
			if idle := time.Since(wk.last); idle < workerIdle {
				t.Reset(workerIdle - idle)
				continue
			}
			w.mu.Lock()
			if i := slices.Index(w.idle, wk); i >= 0 {
				w.idle = slices.Delete(w.idle, i, i+1)
				w.mu.Unlock()
				return
			}
			// Taken by run just now: its job is on the way.
			w.mu.Unlock()
			t.Reset(workerIdle)
		}
	}
}

// close ends the idle workers; the busy ones end after their request.
func (w *workers) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for _, wk := range w.idle {
		close(wk.jobs)
	}
	w.idle = nil
}

func serveJob(f func() bool) (r result) {
	defer func() {
		if p := recover(); p != nil {
			buf := make([]byte, 64<<10)
			r = result{panic: p, stack: buf[:runtime.Stack(buf, false)]}
		}
	}()
	return result{ok: f()}
}
