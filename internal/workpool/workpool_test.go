package workpool

import (
	"errors"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// goid is the calling goroutine's id, from its stack's header.
func goid() string {
	buf := make([]byte, 64)
	return strings.Fields(string(buf[:runtime.Stack(buf, false)]))[1]
}

// alive reports whether goroutine id exists.
func alive(id string) bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "goroutine "+id+" [")
}

// waitGone waits up to 5 s for goroutine id to end.
func waitGone(t *testing.T, id string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); alive(id); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("worker %s still running", id)
		}
	}
}

// on runs nothing but reports the goroutine it ran on.
func on(p *Pool, done chan Result) string {
	var id string
	if r := p.Run(func() bool { id = goid(); return true }, done); !r.OK || r.Panic != nil || r.Goexit {
		panic("run: " + strconv.Quote(string(r.Stack)))
	}
	return id
}

// TestReuse: functions run one after another share one worker, not the
// caller's goroutine, and f's result comes back.
func TestReuse(t *testing.T) {
	var p Pool
	defer p.Close()
	done := make(chan Result, 1)
	first := on(&p, done)
	if first == goid() {
		t.Fatal("f ran on the caller's goroutine")
	}
	for i := range 10 {
		if id := on(&p, done); id != first {
			t.Fatalf("run %d on goroutine %s, the first on %s: the idle worker was not reused", i, id, first)
		}
	}
	if r := p.Run(func() bool { return false }, nil); r.OK || r.Panic != nil {
		t.Fatalf("f returned false: %+v", r)
	}
}

// TestIdleExit: a worker used within Idle stays (its timer firing in
// between), one idle for Idle exits (by 1.5 Idle), and the next function
// gets a new one.
func TestIdleExit(t *testing.T) {
	p := Pool{Idle: 300 * time.Millisecond}
	defer p.Close()
	done := make(chan Result, 1)
	first := on(&p, done)
	for end := time.Now().Add(2*p.Idle + 100*time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if id := on(&p, done); id != first {
			t.Fatalf("a worker busy every 10ms was replaced (%s, then %s) within an idle time of %v", first, id, p.Idle)
		}
	}
	start := time.Now()
	waitGone(t, first)
	waited := time.Since(start)
	if waited < p.Idle-50*time.Millisecond {
		t.Errorf("the worker exited %v after its last function, Idle is %v", waited, p.Idle)
	}
	if waited > p.Idle*3/2+500*time.Millisecond {
		t.Errorf("the worker exited %v after its last function, later than 1.5 times Idle (%v)", waited, p.Idle)
	}
	if id := on(&p, done); id == first {
		t.Fatal("ran on the worker that exited")
	}
}

// TestClose: Close ends every idle worker at once, a busy one after its
// function, and a Run after Close still runs on a worker that then ends.
func TestClose(t *testing.T) {
	var p Pool // DefaultIdle: only Close ends these workers
	const n = 3
	ids := make(chan string, n+1)
	var started, release sync.WaitGroup
	started.Add(n)
	release.Add(1)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			p.Run(func() bool {
				ids <- goid()
				started.Done()
				release.Wait()
				return true
			}, nil)
		})
	}
	started.Wait() // n workers at once
	release.Done()
	wg.Wait()
	busy := make(chan struct{})
	busyDone := make(chan Result, 1)
	go func() {
		busyDone <- p.Run(func() bool { ids <- goid(); <-busy; return true }, nil)
	}()
	var idle []string
	for range n {
		idle = append(idle, <-ids)
	}
	busyID := <-ids
	if i := slices.Index(idle, busyID); i >= 0 { // reused, as it should
		idle = slices.Delete(idle, i, i+1)
	} else {
		t.Errorf("the busy function ran on a new worker %s, not on one of the idle %v", busyID, idle)
	}
	p.Close()
	for _, id := range idle {
		waitGone(t, id)
	}
	if !alive(busyID) {
		t.Fatal("Close ended a busy worker")
	}
	close(busy)
	if r := <-busyDone; !r.OK {
		t.Fatalf("the busy function: %+v", r)
	}
	waitGone(t, busyID)
	after := on(&p, nil)
	waitGone(t, after)
}

// TestPanic: a panic comes back to the caller with its value and the
// stack it happened on, and its worker serves the next function.
func TestPanic(t *testing.T) {
	var p Pool
	defer p.Close()
	done := make(chan Result, 1)
	first := on(&p, done)
	errBoom := errors.New("boom")
	r := p.Run(func() bool { panicHere(errBoom); return true }, done)
	if r.Panic != errBoom || r.OK || r.Goexit {
		t.Fatalf("panic: %+v", r)
	}
	if !strings.Contains(string(r.Stack), "panicHere") || !strings.HasPrefix(string(r.Stack), "goroutine "+first+" [") {
		t.Errorf("the stack is not the panic's on worker %s:\n%s", first, r.Stack)
	}
	if id := on(&p, done); id != first {
		t.Errorf("after a panic the next function ran on %s, not worker %s", id, first)
	}
	r = p.Run(func() bool { panic(nil) }, done)
	if _, ok := r.Panic.(*runtime.PanicNilError); !ok {
		t.Errorf("panic(nil): %+v", r)
	}
}

func panicHere(err error) { panic(err) }

// TestGoexit: runtime.Goexit in f ends its worker, and the caller is told
// instead of waiting for ever.
func TestGoexit(t *testing.T) {
	var p Pool
	defer p.Close()
	done := make(chan Result, 1)
	first := on(&p, done)
	r := p.Run(func() bool { runtime.Goexit(); return true }, done)
	if !r.Goexit || r.OK || r.Panic != nil {
		t.Fatalf("Goexit: %+v", r)
	}
	waitGone(t, first)
	if id := on(&p, done); id == first {
		t.Fatal("ran on the worker that called Goexit")
	}
}

// TestConcurrent: many callers at once each get their own function's
// result, on no more workers than callers.
func TestConcurrent(t *testing.T) {
	var p Pool
	defer p.Close()
	const callers, runs = 32, 200
	var mu sync.Mutex
	workers := map[string]bool{}
	var ran atomic.Int64
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			done := make(chan Result, 1)
			for i := range runs {
				want := (c+i)%2 == 0
				r := p.Run(func() bool {
					ran.Add(1)
					id := goid()
					mu.Lock()
					workers[id] = true
					mu.Unlock()
					if i%50 == 49 {
						panic(c)
					}
					return want
				}, done)
				if i%50 == 49 {
					if r.Panic != c {
						t.Errorf("caller %d run %d: panic %v", c, i, r.Panic)
					}
				} else if r.OK != want || r.Panic != nil {
					t.Errorf("caller %d run %d: %+v, want OK %v", c, i, r, want)
				}
			}
		})
	}
	wg.Wait()
	if n := ran.Load(); n != callers*runs {
		t.Errorf("%d functions ran, want %d", n, callers*runs)
	}
	if len(workers) > callers {
		t.Errorf("%d workers for %d callers", len(workers), callers)
	}
}

// TestGo: Go returns before its function ends, runs it on a worker that
// Run reuses afterwards, and a panic that escapes it costs neither the
// caller nor the worker.
func TestGo(t *testing.T) {
	var p Pool
	defer p.Close()
	release := make(chan struct{})
	ran := make(chan string, 1)
	p.Go(func() {
		<-release // Go must not wait for this
		ran <- goid()
	})
	close(release)
	first := <-ran
	done := make(chan Result, 1)
	waitIdle(t, &p, 1)
	if id := on(&p, done); id != first {
		t.Fatalf("Run ran on %s, want the idle worker %s that Go used", id, first)
	}
	p.Go(func() { panic("escaped") })
	waitIdle(t, &p, 1)
	p.Go(func() { ran <- goid() })
	if id := <-ran; !alive(id) {
		t.Fatalf("worker %s gone", id)
	}
}

// waitIdle waits up to 5 s for p to have n idle workers.
func waitIdle(t *testing.T, p *Pool, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		p.mu.Lock()
		idle := len(p.idle)
		p.mu.Unlock()
		if idle == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d idle workers, want %d", idle, n)
		}
	}
}
