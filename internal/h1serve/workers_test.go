package h1serve

import (
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestWorkers: a job runs on a worker, which is reused for the next; a
// panic comes back with its stack; close ends the idle workers, and a job
// run after it still runs.
func TestWorkers(t *testing.T) {
	var w workers
	done := make(chan result, 1)
	stacks := make(chan string, 2)
	for range 2 {
		r := w.run(func() bool {
			buf := make([]byte, 1<<10)
			stacks <- string(buf[:runtime.Stack(buf, false)])
			return true
		}, done)
		if !r.ok || r.panic != nil {
			t.Fatalf("run: %+v", r)
		}
	}
	a, b := <-stacks, <-stacks
	if ga, gb := strings.Fields(a)[1], strings.Fields(b)[1]; ga != gb {
		t.Errorf("two jobs in a row ran on goroutines %s and %s: the idle worker was not reused", ga, gb)
	}
	r := w.run(func() bool { panic(http.ErrAbortHandler) }, done)
	if r.panic != http.ErrAbortHandler || !strings.Contains(string(r.stack), "TestWorkers") {
		t.Errorf("panic: %v, stack:\n%s", r.panic, r.stack)
	}
	before := runtime.NumGoroutine()
	w.close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() >= before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n >= before {
		t.Errorf("%d goroutines after close, %d before: the idle worker did not end", n, before)
	}
	if r := w.run(func() bool { return false }, done); r.ok || r.panic != nil {
		t.Errorf("run after close: %+v", r)
	}
}
