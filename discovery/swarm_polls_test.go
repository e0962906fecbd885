package discovery

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmgate/swarmgate/bench/scale/fakedocker"
	"github.com/swarmgate/swarmgate/route"
)

// TestSwarmEventPollsCounted checks that a service an event named is polled
// eventPolls times after the event's listing, whether the API answers at
// once or slowly (a loaded host): the requests a change costs do not depend
// on timing. With a deadline of a second instead, the slow API got fewer
// polls.
func TestSwarmEventPollsCounted(t *testing.T) {
	polls := eventPolls(DefaultSwarmFastPoll)
	if polls != 3 {
		t.Fatalf("eventPolls(%v) = %d, want the 3 due within %v", DefaultSwarmFastPoll, polls, swarmEventGrace)
	}
	for _, delay := range []time.Duration{0, 200 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			fake := fakedocker.New(fakedocker.Options{Services: 20, Tasks: 2})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !strings.HasSuffix(r.URL.Path, "/events") {
					time.Sleep(delay)
				}
				fake.ServeHTTP(w, r)
			}))
			t.Cleanup(srv.Close)
			s := newTestSwarm(t, SwarmOptions{Host: "tcp://" + srv.Listener.Addr().String(), Network: "bench-net",
				Registerer: prometheus.NewRegistry(), Resync: time.Hour})
			rec := newRecorder()
			startRun(t, s, rec)
			rec.waitFor(t, 0, 10*time.Second, "the first listing", func(c route.Config) bool { return len(c.Routes) == 20 })
			quiet := func() {
				t.Helper()
				for deadline := time.Now().Add(20 * time.Second); time.Since(fake.LastRequest()) < 2*DefaultSwarmFastPoll+delay; time.Sleep(50 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatal("the source did not stop polling")
					}
				}
			}
			quiet()
			before, polls0 := fake.Requests(), metricValue(s.m.syncs.WithLabelValues(syncPoll))
			from := rec.count()
			if _, err := fake.ScaleUp(fake.ServiceID(7)); err != nil {
				t.Fatal(err)
			}
			rec.waitFor(t, from, 10*time.Second, "the new task", endpointCount(fakedocker.ServiceName(7), 3))
			quiet()
			after := fake.Requests()
			for _, ep := range []string{"services", "tasks"} {
				if got := after[ep] - before[ep]; got != int64(1+polls) {
					t.Errorf("%s requests after the change: %d, want %d (the event's listing and %d polls)", ep, got, 1+polls, polls)
				}
			}
			if got := metricValue(s.m.syncs.WithLabelValues(syncPoll)) - polls0; got != float64(polls) {
				t.Errorf("%v polls after the change, want %d", got, polls)
			}
		})
	}
}
