package discovery

import (
	"sync"
	"time"

	"github.com/swarmgate/swarmgate/route"
)

// SwarmState is what a Swarm source reports of itself: on the edge's
// /readyz, /api/sources and status page, as the control client reports the
// control plane.
type SwarmState struct {
	// Host is the Docker API the source watches.
	Host string `json:"host"`
	// Connected: the API answered the last listing, and the event stream
	// is open.
	Connected bool `json:"connected"`
	// Synced: a Config has been delivered. It stays true while the API is
	// away: the last Config is in force.
	Synced bool `json:"synced"`
	// LastSync is when the last listing succeeded; Changed is when the
	// change that made the Config in force was reported.
	LastSync time.Time `json:"last_sync,omitzero"`
	Changed  time.Time `json:"changed,omitzero"`
	// LastError is why the API was last unreachable; "" if it never was.
	LastError string `json:"last_error,omitempty"`
	// Routes and LabelErrors count the Config in force.
	Routes      int `json:"routes"`
	LabelErrors int `json:"label_errors"`
}

// swarmStatus holds a Swarm's state for Status, written by Run's goroutine.
type swarmStatus struct {
	mu sync.Mutex
	st SwarmState
}

func (s *swarmStatus) set(f func(*SwarmState)) {
	s.mu.Lock()
	f(&s.st)
	s.mu.Unlock()
}

func (s *swarmStatus) get() SwarmState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

var _ route.Reporter = (*Swarm)(nil)

// State returns what the source last knew of the API and the Config in
// force.
func (s *Swarm) State() SwarmState {
	st := s.status.get()
	st.Host = s.cli.DaemonHost()
	return st
}

// Status reports the source's state (route.Reporter).
func (s *Swarm) Status() route.SourceStatus {
	st := s.State()
	return route.SourceStatus{Connected: st.Connected, Synced: st.Synced, Detail: st}
}
