package edge

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/swarmgate/swarmgate/fleet"
	"github.com/swarmgate/swarmgate/tlsstore"
)

// TestPollTicketsBacksOff polls a control plane that keeps no state (its
// answers lack the fleet's marker): the polls come further and further
// apart, not one per first wait. Once the control plane serves keys, the
// edge takes them at its next poll and then polls once per held period.
func TestPollTicketsBacksOff(t *testing.T) {
	var requests atomic.Int64
	var state atomic.Bool
	keys, err := json.Marshal([]fleet.TicketKey{{Secret: make([]byte, 32), From: time.Now().Add(-time.Minute), Until: time.Now().Add(time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if !state.Load() || !strings.HasPrefix(r.URL.Path, fleet.Path) {
			http.NotFound(w, r) // a control plane without --state-key-file
			return
		}
		w.Header().Set("Swarmgate-State", "1")
		w.Write(keys)
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer srv.Close()
	c, err := fleet.NewClient(fleet.ClientOptions{Addrs: []string{"tcp://" + srv.Listener.Addr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	// A poll gives up before the fleet client's first retry (100 ms):
	// one request per poll.
	pt := pollTiming{first: 20 * time.Millisecond, held: 400 * time.Millisecond, timeout: 50 * time.Millisecond}
	stop := pollTickets(t.Context(), c, &tlsstore.TicketKeys{}, zap.New(core), pt)
	defer stop()

	// Polls of up to 50 ms and waits of 20, 40, 80, 160, 320, 400 ms:
	// about 7 polls in 1.5 s, where a poll per first wait would be 21.
	time.Sleep(1500 * time.Millisecond)
	if n := requests.Load(); n < 2 || n > 12 {
		t.Fatalf("%d polls in 1.5 s of a control plane without state; want 2-12", n)
	}
	if logs.FilterMessageSnippet("no session ticket keys").Len() != 1 {
		t.Errorf("logs %v, want one warning that there are no keys", logs.All())
	}

	state.Store(true)
	for deadline := time.Now().Add(2 * time.Second); logs.FilterMessage("session ticket keys of the fleet in use").Len() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the keys served were not taken within 2 s; logs %v", logs.All())
		}
	}
	before := requests.Load()
	time.Sleep(time.Second)
	if n := requests.Load() - before; n > 4 {
		t.Fatalf("%d polls in 1 s while holding keys, every 400 ms; want at most 4", n)
	}
}
