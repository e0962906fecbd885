package socketproxy

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// fakeEvents is an upstream /events endpoint driven by the test: every
// subscription gets its own channel of lines; closing a channel ends that
// stream.
type fakeEvents struct {
	mu      sync.Mutex // guards streams, queries
	streams []chan string
	queries []string
	// status, when set, is answered instead of a stream.
	status int
	open   sync.WaitGroup // streams being served
}

func (f *fakeEvents) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/events") {
		http.NotFound(w, r)
		return
	}
	f.open.Add(1)
	defer f.open.Done()
	ch := make(chan string, 16)
	f.mu.Lock()
	f.streams = append(f.streams, ch)
	f.queries = append(f.queries, r.URL.RawQuery)
	status := f.status
	f.mu.Unlock()
	if status != 0 {
		w.WriteHeader(status)
		io.WriteString(w, `{"message":"invalid filter"}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	for {
		select {
		case line, ok := <-ch:
			if !ok {
				return
			}
			io.WriteString(w, line+"\n")
			w.(http.Flusher).Flush()
		case <-r.Context().Done():
			return
		}
	}
}

func (f *fakeEvents) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.streams)
}

func (f *fakeEvents) stream(i int) chan string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.streams[i]
}

func (f *fakeEvents) query(i int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.queries[i]
}

func event(nano int64, id string) string {
	return fmt.Sprintf(`{"Type":"service","Action":"update","Actor":{"ID":%q},"time":%d,"timeNano":%d}`, id, nano/1e9, nano)
}

// watcher is one client reading an /events stream line by line.
type watcher struct {
	resp  *http.Response
	lines *bufio.Reader
}

func watch(t *testing.T, client *http.Client, url string) *watcher {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return &watcher{resp: resp, lines: bufio.NewReader(resp.Body)}
}

func (w *watcher) next(t *testing.T) string {
	t.Helper()
	line, err := w.lines.ReadString('\n')
	if err != nil {
		t.Fatalf("reading event: %v", err)
	}
	return line[:len(line)-1]
}

func (w *watcher) close() { w.resp.Body.Close() }

func TestEventsFanOut(t *testing.T) {
	const clients = 20
	fake := &fakeEvents{}
	up := httptest.NewServer(fake)
	defer up.Close()
	tp := startProxy(t, Options{Upstream: upstreamOf(t, up.URL)}, nil)
	client := newClient(t)

	const filters = "filters=%7B%22type%22%3A%5B%22service%22%5D%7D"
	ws := make([]*watcher, clients)
	for i := range ws {
		// Different spellings of the same path share the stream.
		path := "/v1.41/events"
		if i%2 == 1 {
			path = "//v1.41/./events/"
		}
		ws[i] = watch(t, client, tp.url+path+"?"+filters)
	}
	if n := fake.count(); n != 1 {
		t.Fatalf("upstream subscriptions = %d, want 1", n)
	}
	if q := fake.query(0); q != filters {
		t.Errorf("upstream query %q, want %q", q, filters)
	}
	if got := testkit.MetricValue(t, tp.m.subscribers); got != clients {
		t.Errorf("subscribers gauge = %v, want %d", got, clients)
	}
	sent := []string{event(1e18+1, "a"), event(1e18+2, "b"), `{"not":"an event"}`, event(1e18+2, "c")}
	for _, line := range sent {
		fake.stream(0) <- line
	}
	for i, w := range ws {
		for _, want := range sent {
			if got := w.next(t); got != want {
				t.Fatalf("watcher %d: got %q, want %q", i, got, want)
			}
		}
	}

	// since/until change what a stream carries: such a watcher gets its own.
	own := watch(t, client, tp.url+"/events?"+filters+"&since=1")
	if n := fake.count(); n != 2 {
		t.Fatalf("upstream subscriptions with a since watcher = %d, want 2", n)
	}
	fake.stream(1) <- event(5, "old")
	if got := own.next(t); got != event(5, "old") {
		t.Errorf("since watcher got %q", got)
	}
	own.close()

	for _, w := range ws {
		w.close()
	}
	// The last watcher leaving closes the shared upstream stream.
	fake.open.Wait()
	waitFor(t, "subscribers gauge to drop to 0", func() bool { return testkit.MetricValue(t, tp.m.subscribers) == 0 })
	if got := testkit.MetricValue(t, tp.m.upstream.WithLabelValues(string(EndpointEvents))); got != 2 {
		t.Errorf("upstream events requests = %v, want 2", got)
	}
}

func TestEventsResume(t *testing.T) {
	fake := &fakeEvents{}
	up := httptest.NewServer(fake)
	defer up.Close()
	tp := startProxy(t, Options{Upstream: upstreamOf(t, up.URL), Backoff: func(int) time.Duration { return 0 }}, nil)
	client := newClient(t)
	ws := []*watcher{watch(t, client, tp.url+"/events"), watch(t, client, tp.url+"/events")}

	const t0 = int64(1_700_000_000_123456789)
	first := []string{event(t0, "a"), event(t0+10, "b"), event(t0+10, "c")}
	for _, l := range first {
		fake.stream(0) <- l
	}
	for _, w := range ws {
		for _, want := range first {
			if got := w.next(t); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
	}
	close(fake.stream(0)) // the upstream stream breaks

	waitFor(t, "the hub to resubscribe", func() bool { return fake.count() == 2 })
	if q, want := fake.query(1), "since=1700000000.123456799"; q != want {
		t.Errorf("resubscribed with %q, want %q", q, want)
	}
	// The Engine replays from since= inclusive: b and c again, then news.
	for _, l := range []string{event(t0+10, "b"), event(t0+10, "c"), event(t0+10, "d"), event(t0+20, "e")} {
		fake.stream(1) <- l
	}
	for _, w := range ws {
		for _, want := range []string{event(t0+10, "d"), event(t0+20, "e")} {
			if got := w.next(t); got != want {
				t.Fatalf("after resume got %q, want %q", got, want)
			}
		}
		w.close()
	}
	if got := testkit.MetricValue(t, tp.m.resubscribes); got != 1 {
		t.Errorf("resubscribes = %v, want 1", got)
	}
	fake.open.Wait()
}

func TestEventsNotResumed(t *testing.T) {
	fake := &fakeEvents{}
	up := httptest.NewServer(fake)
	defer up.Close()
	tp := startProxy(t, Options{
		Upstream:     upstreamOf(t, up.URL),
		Backoff:      func(int) time.Duration { return time.Millisecond },
		ResumeWindow: 20 * time.Millisecond,
	}, nil)
	w := watch(t, newClient(t), tp.url+"/events")
	fake.mu.Lock()
	fake.status = http.StatusInternalServerError
	fake.mu.Unlock()
	close(fake.stream(0))
	// The watcher sees a broken stream, not a clean end, so it resyncs.
	if _, err := io.ReadAll(w.resp.Body); err == nil {
		t.Fatal("stream ended cleanly; want an error")
	}
	w.close()
	if got := testkit.MetricValue(t, tp.m.slowSubscribers); got != 0 {
		t.Errorf("dropped-as-slow = %v, want 0", got)
	}
}

func TestEventsUpstreamError(t *testing.T) {
	fake := &fakeEvents{status: http.StatusBadRequest}
	up := httptest.NewServer(fake)
	defer up.Close()
	tp := startProxy(t, Options{Upstream: upstreamOf(t, up.URL)}, nil)
	res := rawRequest(t, tp.addr, get("GET", "/events?filters=bad"), false)
	if res.status != http.StatusBadRequest || res.body != `{"message":"invalid filter"}` {
		t.Errorf("got %d %q, want the upstream's 400", res.status, res.body)
	}
	// A failed hub is not reused: the next watcher tries again.
	rawRequest(t, tp.addr, get("GET", "/events?filters=bad"), false)
	if n := fake.count(); n != 2 {
		t.Errorf("upstream subscriptions = %d, want 2", n)
	}
}

func TestSlowSubscriberDropped(t *testing.T) {
	fake := &fakeEvents{}
	up := httptest.NewServer(fake)
	defer up.Close()
	tp := startProxy(t, Options{Upstream: upstreamOf(t, up.URL), EventBuffer: 2}, nil)
	h, slow := tp.subscribe("/events", "")
	_, fast := tp.subscribe("/events", "")
	<-h.ready
	for i := range 3 {
		line := []byte(fmt.Sprintf("line %d\n", i))
		h.broadcast(line)
		if got := <-fast.ch; string(got) != string(line) {
			t.Fatalf("fast subscriber got %q", got)
		}
	}
	select {
	case <-slow.gone:
	default:
		t.Fatal("slow subscriber still subscribed after overflowing its buffer")
	}
	select {
	case <-fast.gone:
		t.Fatal("fast subscriber dropped")
	default:
	}
	if got := testkit.MetricValue(t, tp.m.slowSubscribers); got != 1 {
		t.Errorf("dropped = %v, want 1", got)
	}
	tp.unsubscribe(h, slow)
	tp.unsubscribe(h, fast)
	fake.open.Wait()
}
