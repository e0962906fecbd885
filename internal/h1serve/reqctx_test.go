package h1serve

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestRequestContextEnds: a request's context, and the contexts derived
// from it, are live while its handler runs and canceled once it returns,
// for a handler that keeps them; each request of a connection has its own.
// Contexts derived from it start no goroutine.
func TestRequestContextEnds(t *testing.T) {
	type kept struct {
		ctx, child, timeout, stopped context.Context
		after                        chan struct{}
		cancels                      []context.CancelFunc
	}
	got := make(chan kept, 2)
	addr := serve(t, &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if ctx.Err() != nil {
			t.Error("request context done while its handler runs")
		}
		before := runtime.NumGoroutine()
		var k kept
		k.ctx = ctx
		var cancel1, cancel2, cancel3 context.CancelFunc
		k.child, cancel1 = context.WithCancel(ctx)
		k.timeout, cancel2 = context.WithTimeout(ctx, time.Hour)
		k.stopped, cancel3 = context.WithCancel(ctx)
		cancel3()
		k.cancels = []context.CancelFunc{cancel1, cancel2}
		k.after = make(chan struct{})
		context.AfterFunc(ctx, func() { close(k.after) })
		never := context.AfterFunc(ctx, func() { t.Error("a stopped AfterFunc ran") })
		if !never() {
			t.Error("AfterFunc's stop reported it had nothing to stop")
		}
		if n := runtime.NumGoroutine(); n > before {
			t.Errorf("deriving contexts started %d goroutines", n-before)
		}
		if k.child.Err() != nil || k.timeout.Err() != nil || !errors.Is(k.stopped.Err(), context.Canceled) {
			t.Errorf("derived contexts while the handler runs: %v %v %v", k.child.Err(), k.timeout.Err(), k.stopped.Err())
		}
		got <- k
	})})
	c := dial(t, addr)
	br := bufio.NewReader(c)
	var first context.Context
	for i := range 2 {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		readResponse(t, br, "GET")
		k := <-got
		for name, ctx := range map[string]context.Context{"request": k.ctx, "WithCancel": k.child, "WithTimeout": k.timeout} {
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
				t.Fatalf("request %d: %s context not canceled after its handler returned", i, name)
			}
			if !errors.Is(ctx.Err(), context.Canceled) || !errors.Is(context.Cause(ctx), context.Canceled) {
				t.Fatalf("request %d: %s context: Err %v, Cause %v", i, name, ctx.Err(), context.Cause(ctx))
			}
		}
		select {
		case <-k.after:
		case <-time.After(2 * time.Second):
			t.Fatalf("request %d: AfterFunc not called after the handler returned", i)
		}
		late, cancel := context.WithCancel(k.ctx)
		if late.Err() == nil {
			t.Fatalf("request %d: a context derived after the end is live", i)
		}
		cancel()
		for _, cancel := range k.cancels {
			cancel()
		}
		ran := make(chan struct{})
		if stop := context.AfterFunc(k.ctx, func() { close(ran) }); stop() {
			t.Fatalf("request %d: AfterFunc after the end was stopped", i)
		}
		<-ran
		if _, ok := k.ctx.(*reqCtx); !ok {
			t.Fatalf("request %d: context %T, want a *reqCtx", i, k.ctx)
		}
		if i == 0 {
			first = k.ctx
		} else if k.ctx == first {
			t.Fatal("two requests share a context")
		}
	}
}

// TestReqCtx: a request context that nothing waited on costs nothing to
// cancel, and answers as a canceled context.WithCancel's would; one that
// was waited on is a parent as a *cancelCtx is, without a goroutine per
// child.
func TestReqCtx(t *testing.T) {
	type key struct{}
	parent := context.WithValue(context.Background(), key{}, "v")
	var x *reqCtx
	if n := testing.AllocsPerRun(100, func() {
		x = &reqCtx{Context: parent}
		if x.Err() != nil || x.Value(key{}) != "v" {
			t.Fatal("a new reqCtx is done, or lost its parent's value")
		}
		x.cancel()
	}); n != 1 { // the reqCtx itself
		t.Errorf("%v allocations, want 1", n)
	}
	if !errors.Is(x.Err(), context.Canceled) || !errors.Is(context.Cause(x), context.Canceled) || x.Value(key{}) != "v" {
		t.Fatalf("canceled: Err %v, Cause %v, value %v", x.Err(), context.Cause(x), x.Value(key{}))
	}
	select {
	case <-x.Done():
	default:
		t.Fatal("canceled, but Done is not closed")
	}

	x = &reqCtx{Context: parent}
	before := runtime.NumGoroutine()
	children := make([]context.Context, 3)
	cancels := make([]context.CancelFunc, 3)
	for i := range children {
		children[i], cancels[i] = context.WithCancel(x)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("3 children started %d goroutines", n-before)
	}
	cancels[1]()
	if x.Err() != nil || children[0].Err() != nil || children[1].Err() == nil {
		t.Fatal("canceling a child canceled its parent or a sibling, or not itself")
	}
	x.cancel()
	x.cancel()
	for i, c := range children {
		if !errors.Is(c.Err(), context.Canceled) {
			t.Errorf("child %d after its parent's cancel: %v", i, c.Err())
		}
		cancels[i]()
	}
	if !errors.Is(x.Err(), context.Canceled) || x.Value(key{}) != "v" {
		t.Fatalf("canceled after a Done: Err %v, value %v", x.Err(), x.Value(key{}))
	}
}

// TestRequestContextCanceledConn: with a ConnContext that can be done,
// canceling it cancels the running request's context.
func TestRequestContextCanceledConn(t *testing.T) {
	var mu sync.Mutex
	var cancels []context.CancelFunc
	canceled := make(chan error, 1)
	addr := serve(t, &Server{
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			ctx, cancel := context.WithCancel(ctx)
			mu.Lock()
			cancels = append(cancels, cancel)
			mu.Unlock()
			return ctx
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			cancels[0]()
			mu.Unlock()
			select {
			case <-r.Context().Done():
				canceled <- r.Context().Err()
			case <-time.After(2 * time.Second):
				canceled <- nil
			}
		}),
	})
	c := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	readResponse(t, bufio.NewReader(c), "GET")
	if err := <-canceled; !errors.Is(err, context.Canceled) {
		t.Fatalf("request context after its connection's was canceled: %v", err)
	}
}
