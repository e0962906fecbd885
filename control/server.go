package control

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/internal/metrics"
	"github.com/swarmgate/swarmgate/internal/opt"
	"github.com/swarmgate/swarmgate/route"
)

// StreamPath is where the Server serves the stream.
const StreamPath = "/v1/stream"

// Defaults of ServerOptions.
const (
	DefaultHistory      = 1024
	DefaultHistoryKeys  = 1 << 20
	DefaultHeartbeat    = 15 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultResumeWait   = time.Second
	DefaultMaxEdges     = 4096
)

// ServerOptions configure a Server. Every zero value is a working default.
type ServerOptions struct {
	// History is how many versions an edge can resume from with a delta.
	// If zero, DefaultHistory.
	History int
	// HistoryKeys bounds the changed keys the history holds across all its
	// versions (a change of every route costs as many keys as there are
	// routes); the oldest versions go first. If zero, DefaultHistoryKeys.
	HistoryKeys int
	// Heartbeat is how often an idle stream carries a ping, so that an edge
	// tells a quiet control plane from a dead one. If zero, DefaultHeartbeat.
	Heartbeat time.Duration
	// WriteTimeout bounds the write of one frame to one edge. An edge that
	// does not take a frame within it is dropped; it reconnects and
	// resyncs. If zero, DefaultWriteTimeout.
	WriteTimeout time.Duration
	// ResumeWait is how long a stream that asks to resume from a version
	// this replica has not seen waits for it before sending a snapshot: an
	// edge failing over from a replica slightly ahead then resumes with a
	// delta. If zero, DefaultResumeWait; negative, no wait.
	ResumeWait time.Duration
	// MaxEdges bounds the streams served at once; beyond it new ones are
	// answered 503. If zero, DefaultMaxEdges.
	MaxEdges int
	// Name identifies the replica in logs and in the Swarmgate-Replica
	// response header. May be empty.
	Name string
	// Logger receives stream and state changes. If nil, nothing is logged.
	Logger *zap.Logger
	// Registerer receives the server's metrics. If nil, they are not exported.
	Registerer prometheus.Registerer
	// Now is the clock that stamps Configs whose source set no Changed.
	// If nil, time.Now.
	Now func() time.Time
}

// Server holds the desired configuration (the latest Config given to
// Update), a bounded history of the versions before it, and serves them to
// edges as a stream: a snapshot when an edge comes with no version or one
// no longer in the history, else a delta from its version, then a delta per
// new version. Each edge's stream reads the shared state on its own
// goroutine, so no edge waits for another and Update never waits for any.
type Server struct {
	o   ServerOptions
	log *zap.Logger
	m   *serverMetrics

	updateMu sync.Mutex // serialises Update
	enc      encoder    // the last Config's encodings; guarded by updateMu
	cur      atomic.Pointer[version]

	mu      sync.Mutex // guards hist and streams
	hist    history
	streams map[*stream]struct{}

	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

// version is one state of the configuration. Everything but the lazily
// built frames is immutable once published.
type version struct {
	seq     uint64 // this replica's count; never on the wire
	id      string
	prev    string // the version before, "" for the first
	changed time.Time
	keys    []string // the state's keys, sorted
	items   []item   // items[i] is the item of keys[i]
	routes  int
	errors  int
	live    []byte // the delta frame from prev: what every edge in step gets

	framesMu sync.Mutex // guards snapshot and deltas
	snapshot []byte
	deltas   map[string][]byte // coalesced delta frames by base version
}

// maxCachedDeltas bounds the coalesced delta frames kept per version.
const maxCachedDeltas = 64

// NewServer returns a Server with no configuration: streams are refused
// with 503 until the first Update.
func NewServer(o ServerOptions) *Server {
	opt.Positive(&o.History, DefaultHistory)
	opt.Positive(&o.HistoryKeys, DefaultHistoryKeys)
	opt.Positive(&o.Heartbeat, DefaultHeartbeat)
	opt.Positive(&o.WriteTimeout, DefaultWriteTimeout)
	if o.ResumeWait == 0 {
		o.ResumeWait = DefaultResumeWait
	}
	opt.Positive(&o.MaxEdges, DefaultMaxEdges)
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Server{
		o:       o,
		log:     log,
		m:       newServerMetrics(o.Registerer),
		hist:    history{max: o.History, maxKeys: o.HistoryKeys, seqOf: map[string]uint64{}},
		streams: map[*stream]struct{}{},
		done:    make(chan struct{}),
	}
}

// Ready reports whether the server holds a configuration.
func (s *Server) Ready() bool { return s.cur.Load() != nil }

// Version returns the version in force, "" before the first Update.
func (s *Server) Version() string {
	if v := s.cur.Load(); v != nil {
		return v.id
	}
	return ""
}

// Close ends every stream (edges reconnect, to this replica's successor or
// another) and refuses new ones. Update still works.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.done) })
}

// Update makes cfg the desired configuration: the route.Source update
// callback. A Config that differs from the one in force only in Changed is
// no new version. Update never waits for an edge.
func (s *Server) Update(cfg route.Config) {
	s.updateMu.Lock()
	defer s.updateMu.Unlock()
	changes, complete, err := s.enc.diff(cfg)
	if err != nil { // only an unencodable value, which the model has none of
		s.log.Error("configuration not published", zap.Error(err))
		return
	}
	prev := s.cur.Load()
	first := prev == nil
	if first {
		prev = &version{}
	}
	v := &version{changed: cfg.Changed}
	var touched []string
	var before []itemSum
	v.keys, v.items, touched, before = patch(prev.keys, prev.items, changes, complete)
	if !first && len(touched) == 0 {
		return
	}
	if v.changed.IsZero() {
		v.changed = s.o.Now()
	}
	v.id = versionOfSums(len(v.items), func(i int) [sha256.Size]byte { return v.items[i].sum })
	v.routes, v.errors = len(cfg.Routes), len(cfg.Errors)
	if !first {
		v.seq, v.prev = prev.seq+1, prev.id
		v.live = v.deltaFrame(prev.id, v.changed, touched)
	}

	s.mu.Lock()
	s.hist.add(histEntry{seq: v.seq, id: v.id, changed: v.changed, touched: touched, before: before})
	s.cur.Store(v)
	for st := range s.streams {
		st.notify()
	}
	kept := len(s.hist.entries)
	s.mu.Unlock()

	s.m.versions.Inc()
	s.m.history.Set(float64(kept))
	s.m.routes.Set(float64(v.routes))
	s.m.labelErrors.Set(float64(v.errors))
	s.m.lastChange.Set(float64(v.changed.UnixNano()) / 1e9)
	s.log.Debug("new version", zap.String("version", v.id), zap.String("from", v.prev),
		zap.Int("changed_items", len(touched)), zap.Int("routes", v.routes), zap.Int("label_errors", v.errors))
}

// patch applies changes (sorted by key; a nil encoding deletes) to the
// state of keys and items (sorted by key) and returns the new state, and the
// keys whose item differs, sorted, with their hashes before (zero if absent).
// When complete, changes hold every item of the new state, and a key of the
// old one that is not among them is deleted. The old state is not modified
// (a version is immutable): the new one is a copy, items that are as they
// were shared, which costs a copy of the slices, not a hash or a map per key.
func patch(keys []string, items []item, changes []itemChange, complete bool) (nkeys []string, nitems []item, touched []string, before []itemSum) {
	nkeys = make([]string, 0, len(keys)+len(changes))
	nitems = make([]item, 0, len(keys)+len(changes))
	i, j := 0, 0
	for i < len(keys) || j < len(changes) {
		switch {
		case j == len(changes) || i < len(keys) && keys[i] < changes[j].key:
			if complete { // not in the new state
				touched, before = append(touched, keys[i]), append(before, items[i].sum)
				i++
				continue
			}
			end := len(keys) // a run of keys no change names, copied at once
			if j < len(changes) {
				end = i + sort.SearchStrings(keys[i:], changes[j].key)
			}
			nkeys, nitems = append(nkeys, keys[i:end]...), append(nitems, items[i:end]...)
			i = end
		case i == len(keys) || changes[j].key < keys[i]: // a new key
			if c := changes[j]; c.raw != nil {
				nkeys, nitems = append(nkeys, c.key), append(nitems, newItem(c.key, c.raw))
				touched, before = append(touched, c.key), append(before, itemSum{})
			}
			j++
		default: // the same key
			c, was := changes[j], items[i]
			switch {
			case c.raw == nil:
				touched, before = append(touched, c.key), append(before, was.sum)
			case bytes.Equal(was.raw, c.raw):
				nkeys, nitems = append(nkeys, keys[i]), append(nitems, was)
			default:
				nkeys, nitems = append(nkeys, c.key), append(nitems, newItem(c.key, c.raw))
				touched, before = append(touched, c.key), append(before, was.sum)
			}
			i, j = i+1, j+1
		}
	}
	return nkeys, nitems, touched, before
}

// item returns the item of key k.
func (v *version) item(k string) (item, bool) {
	i, ok := slices.BinarySearch(v.keys, k)
	if !ok {
		return item{}, false
	}
	return v.items[i], true
}

// sumOf returns the hash of key k's item, for history.since.
func (v *version) sumOf(k string) (itemSum, bool) {
	it, ok := v.item(k)
	return it.sum, ok
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// history is the bounded list of the versions an edge can resume from, and
// the keys each changed.
type history struct {
	entries []histEntry // oldest first
	keys    int         // touched keys over all entries
	max     int
	maxKeys int
	seqOf   map[string]uint64 // latest seq of each version id in entries
}

type histEntry struct {
	seq     uint64
	id      string
	changed time.Time
	touched []string  // keys that differ from the version before, sorted
	before  []itemSum // their hashes in the version before; zero if absent
}

func (h *history) add(e histEntry) {
	h.entries = append(h.entries, e)
	h.keys += len(e.touched)
	h.seqOf[e.id] = e.seq
	for len(h.entries) > 1 && (len(h.entries) > h.max || h.keys > h.maxKeys) {
		old := h.entries[0]
		h.entries[0] = histEntry{}
		h.entries = h.entries[1:]
		h.keys -= len(old.touched)
		if h.seqOf[old.id] == old.seq {
			delete(h.seqOf, old.id)
		}
	}
	if cap(h.entries) > 4*h.max { // the slice walks forward; compact it now and then
		h.entries = slices.Clone(h.entries)
	}
}

// since returns the keys whose item differs between version id and the
// version of seq upTo (cur, the hash of its item by key), and when the first change after id
// was reported; ok is false when id is not in the history. A key changed
// and changed back in between is left out.
func (h *history) since(id string, upTo uint64, cur func(key string) (itemSum, bool)) (keys []string, first time.Time, ok bool) {
	base, ok := h.seqOf[id]
	if !ok || len(h.entries) == 0 || base > upTo {
		return nil, time.Time{}, false
	}
	// The first entry after base that touches a key holds the key's hash
	// at base.
	atBase := map[string]itemSum{}
	i := int(base - h.entries[0].seq + 1)
	for ; i < len(h.entries) && h.entries[i].seq <= upTo; i++ {
		e := &h.entries[i]
		if first.IsZero() {
			first = e.changed
		}
		for j, k := range e.touched {
			if _, seen := atBase[k]; !seen {
				atBase[k] = e.before[j]
			}
		}
	}
	for k, was := range atBase {
		if now, ok := cur(k); ok && now != was || !ok && was != (itemSum{}) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, first, true
}

// Frames: one JSON object per line.
//
//	{"t":"snapshot","v":V,"at":T,"set":{KEY:ITEM,...}}
//	{"t":"delta","v":V,"from":B,"at":T,"set":{KEY:ITEM,...},"del":[KEY,...]}
//	{"t":"ping","v":V}
//
// A snapshot replaces the edge's state; a delta applies to state B and
// yields V; "at" is when the (first) change it brings was reported. Items
// are written verbatim, so that the edge hashes the very bytes this replica
// hashed.

func (v *version) snapshotFrame() []byte {
	v.framesMu.Lock()
	defer v.framesMu.Unlock()
	if v.snapshot == nil {
		var b bytes.Buffer
		frameHead(&b, "snapshot", v.id, "", v.changed)
		writeSet(&b, v.keys, func(i int) []byte { return v.items[i].raw })
		b.WriteString("}\n")
		v.snapshot = b.Bytes()
	}
	return v.snapshot
}

// deltaFrame encodes the delta from version base to v: the current value of
// every key in keys, or its deletion.
func (v *version) deltaFrame(base string, at time.Time, keys []string) []byte {
	var b bytes.Buffer
	frameHead(&b, "delta", v.id, base, at)
	var del []string
	set := keys[:0:0]
	var raws [][]byte
	for _, k := range keys {
		if it, ok := v.item(k); ok {
			set, raws = append(set, k), append(raws, it.raw)
		} else {
			del = append(del, k)
		}
	}
	if len(set) > 0 {
		writeSet(&b, set, func(i int) []byte { return raws[i] })
	}
	if len(del) > 0 {
		b.WriteString(`,"del":`)
		raw, _ := json.Marshal(del)
		b.Write(raw)
	}
	b.WriteString("}\n")
	return b.Bytes()
}

func frameHead(b *bytes.Buffer, kind, id, from string, at time.Time) {
	fmt.Fprintf(b, `{"t":%q,"v":%q`, kind, id)
	if from != "" {
		fmt.Fprintf(b, `,"from":%q`, from)
	}
	if !at.IsZero() {
		raw, _ := at.UTC().MarshalJSON()
		b.WriteString(`,"at":`)
		b.Write(raw)
	}
}

// writeSet writes the items of keys, raw(i) being the encoding of keys[i].
func writeSet(b *bytes.Buffer, keys []string, raw func(i int) []byte) {
	b.WriteString(`,"set":{`)
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(k)
		b.Write(name)
		b.WriteByte(':')
		b.Write(raw(i))
	}
	b.WriteByte('}')
}

// frameFrom returns the frame that brings an edge at version base to v,
// and its kind: a delta when base is v's predecessor or in the history,
// else a snapshot.
func (s *Server) frameFrom(v *version, base string) (frame []byte, kind frameKind) {
	switch {
	case base == v.id:
		return v.deltaFrame(base, time.Time{}, nil), kindDelta
	case base != "" && base == v.prev:
		return v.live, kindDelta
	case base == "":
		return v.snapshotFrame(), kindSnapshot
	}
	v.framesMu.Lock()
	f, ok := v.deltas[base]
	v.framesMu.Unlock()
	if ok {
		return f, kindDelta
	}
	s.mu.Lock()
	keys, first, ok := s.hist.since(base, v.seq, v.sumOf)
	s.mu.Unlock()
	if !ok {
		return v.snapshotFrame(), kindResync
	}
	f = v.deltaFrame(base, first, keys)
	v.framesMu.Lock()
	if v.deltas == nil || len(v.deltas) >= maxCachedDeltas {
		v.deltas = map[string][]byte{}
	}
	v.deltas[base] = f
	v.framesMu.Unlock()
	return f, kindDelta
}

// knows reports whether an edge at version id can resume with a delta.
func (s *Server) knows(id string) bool {
	if v := s.cur.Load(); v != nil && (v.id == id || v.prev == id) {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.hist.seqOf[id]
	return ok
}

type frameKind int

const (
	kindSnapshot frameKind = iota // to an edge with no version
	kindResync                    // a snapshot to an edge whose version is not in the history
	kindDelta
	kindPing
)

func (k frameKind) String() string {
	return [...]string{"snapshot", "snapshot", "delta", "ping"}[k]
}

// stream is one edge's open stream.
type stream struct {
	wake    chan struct{} // capacity 1: a new version is in force
	remote  string
	since   time.Time
	version atomic.Pointer[string] // the version last written
}

func (st *stream) notify() {
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

// Handler returns the stream's HTTP handler: GET StreamPath?version=V.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+StreamPath, s.serveStream)
	return mux
}

func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	from := r.URL.Query().Get("version")
	if !validVersion(from) {
		s.m.rejected.WithLabelValues("bad_request").Inc()
		http.Error(w, "control: version must be 32 hex digits", http.StatusBadRequest)
		return
	}
	select {
	case <-s.done:
		s.m.rejected.WithLabelValues("closing").Inc()
		http.Error(w, "control: shutting down", http.StatusServiceUnavailable)
		return
	default:
	}
	if !s.Ready() {
		s.m.rejected.WithLabelValues("not_ready").Inc()
		w.Header().Set("Retry-After", "1")
		http.Error(w, "control: no configuration yet", http.StatusServiceUnavailable)
		return
	}
	st := &stream{wake: make(chan struct{}, 1), remote: r.RemoteAddr, since: time.Now()}
	s.mu.Lock()
	if len(s.streams) >= s.o.MaxEdges {
		s.mu.Unlock()
		s.m.rejected.WithLabelValues("too_many").Inc()
		w.Header().Set("Retry-After", "5")
		http.Error(w, "control: too many edges", http.StatusServiceUnavailable)
		return
	}
	s.streams[st] = struct{}{}
	n := len(s.streams)
	s.mu.Unlock()
	s.m.edges.Set(float64(n))
	log := s.log.With(zap.String("edge", r.RemoteAddr))
	defer func() {
		s.mu.Lock()
		delete(s.streams, st)
		n := len(s.streams)
		s.mu.Unlock()
		s.m.edges.Set(float64(n))
	}()

	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{}) // HTTP/1.1: the server's ReadTimeout must not end the stream
	h := w.Header()
	h.Set("Content-Type", "application/x-ndjson")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if s.o.Name != "" {
		h.Set("Swarmgate-Replica", s.o.Name)
	}
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}

	write := func(frame []byte, kind frameKind) error {
		start := time.Now()
		rc.SetWriteDeadline(start.Add(s.o.WriteTimeout))
		_, err := w.Write(frame)
		if err == nil {
			err = rc.Flush()
		}
		if err == nil {
			// The deadline bounds this write only: left set, it would
			// reset an idle stream (INTERNAL_ERROR) between heartbeats.
			err = rc.SetWriteDeadline(time.Time{})
		}
		if err != nil {
			if time.Since(start) >= s.o.WriteTimeout {
				s.m.stalled.Inc()
				log.Warn("edge too slow: stream dropped; it will reconnect and resync",
					zap.Duration("write_timeout", s.o.WriteTimeout), zap.Int("frame_bytes", len(frame)))
			}
			return err
		}
		s.m.frames.WithLabelValues(kind.String()).Inc()
		s.m.bytes.WithLabelValues(kind.String()).Add(float64(len(frame)))
		return nil
	}

	if from != "" && s.o.ResumeWait > 0 && !s.knows(from) {
		s.waitFor(r, st, from)
	}
	heartbeat := time.NewTimer(s.o.Heartbeat)
	defer heartbeat.Stop()
	sent, first := from, true
	for {
		if v := s.cur.Load(); first || v.id != sent {
			frame, kind := s.frameFrom(v, sent)
			switch {
			case kind == kindResync:
				s.m.snapshots.WithLabelValues("resync").Inc()
				log.Debug("edge resynced with a snapshot: its version is not in the history", zap.String("from", sent), zap.String("version", v.id))
			case kind == kindSnapshot:
				s.m.snapshots.WithLabelValues("new").Inc()
			case first:
				s.m.resumes.Inc()
			}
			if err := write(frame, kind); err != nil {
				log.Debug("stream ended", zap.Error(err))
				return
			}
			if first {
				log.Debug("edge connected", zap.String("from", sent), zap.String("version", v.id), zap.Stringer("sent", kind))
			}
			sent, first = v.id, false
			st.version.Store(&sent)
			heartbeat.Reset(s.o.Heartbeat)
		}
		select {
		case <-st.wake:
		case <-heartbeat.C:
			if err := write(pingFrame(sent), kindPing); err != nil {
				log.Debug("stream ended", zap.Error(err))
				return
			}
			heartbeat.Reset(s.o.Heartbeat)
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
}

// waitFor waits up to ResumeWait for this replica to reach version id.
func (s *Server) waitFor(r *http.Request, st *stream, id string) {
	t := time.NewTimer(s.o.ResumeWait)
	defer t.Stop()
	for !s.knows(id) {
		select {
		case <-st.wake:
		case <-t.C:
			return
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
}

func pingFrame(id string) []byte {
	return fmt.Appendf(nil, `{"t":"ping","v":%q}`+"\n", id)
}

// EdgeStatus is one open stream, for the admin API.
type EdgeStatus struct {
	Remote  string    `json:"remote"`
	Since   time.Time `json:"since"`
	Version string    `json:"version"` // the version last sent
}

// Status is the server's state, for the admin API.
type Status struct {
	Version     string       `json:"version"`
	Changed     time.Time    `json:"changed,omitzero"`
	Routes      int          `json:"routes"`
	LabelErrors int          `json:"label_errors"`
	History     int          `json:"history"` // versions an edge can resume from
	Edges       []EdgeStatus `json:"edges"`
}

// Status returns the server's state.
func (s *Server) Status() Status {
	st := Status{Edges: []EdgeStatus{}}
	if v := s.cur.Load(); v != nil {
		st.Version, st.Changed, st.Routes, st.LabelErrors = v.id, v.changed, v.routes, v.errors
	}
	s.mu.Lock()
	st.History = len(s.hist.entries)
	for e := range s.streams {
		es := EdgeStatus{Remote: e.remote, Since: e.since}
		if v := e.version.Load(); v != nil {
			es.Version = *v
		}
		st.Edges = append(st.Edges, es)
	}
	s.mu.Unlock()
	slices.SortFunc(st.Edges, func(a, b EdgeStatus) int { return a.Since.Compare(b.Since) })
	return st
}

// serverMetrics are the Server's Prometheus series.
type serverMetrics struct {
	edges       prometheus.Gauge
	versions    prometheus.Counter
	history     prometheus.Gauge
	routes      prometheus.Gauge
	labelErrors prometheus.Gauge
	lastChange  prometheus.Gauge
	frames      *prometheus.CounterVec // kind
	bytes       *prometheus.CounterVec // kind
	snapshots   *prometheus.CounterVec // reason: new, resync
	resumes     prometheus.Counter
	stalled     prometheus.Counter
	rejected    *prometheus.CounterVec // reason
}

func newServerMetrics(reg prometheus.Registerer) *serverMetrics {
	return &serverMetrics{
		edges:       metrics.NewGauge(reg, "swarmgate_control_edges", "Edge streams open."),
		versions:    metrics.NewCounter(reg, "swarmgate_control_versions_total", "Versions of the configuration published."),
		history:     metrics.NewGauge(reg, "swarmgate_control_history_versions", "Versions an edge can resume from with a delta."),
		routes:      metrics.NewGauge(reg, "swarmgate_control_routes", "Routes in the configuration in force."),
		labelErrors: metrics.NewGauge(reg, "swarmgate_control_label_errors", "Label errors in the configuration in force."),
		lastChange: metrics.NewGauge(reg, "swarmgate_control_last_change_timestamp_seconds",
			"When the change that made the version in force was reported."),
		frames: metrics.NewCounterVec(reg, "swarmgate_control_frames_sent_total",
			"Frames sent to edges, by kind: snapshot, delta, ping.", "kind"),
		bytes: metrics.NewCounterVec(reg, "swarmgate_control_sent_bytes_total",
			"Bytes of frames sent to edges, by kind: snapshot, delta, ping.", "kind"),
		snapshots: metrics.NewCounterVec(reg, "swarmgate_control_snapshots_total",
			"Snapshots sent to connecting edges, by reason: new (no version) or resync (a version not in the history).", "reason"),
		resumes: metrics.NewCounter(reg, "swarmgate_control_resumes_total",
			"Edges that connected with a known version and resumed with a delta."),
		stalled: metrics.NewCounter(reg, "swarmgate_control_stalled_edges_total",
			"Streams dropped because the edge did not take a frame within the write timeout."),
		rejected: metrics.NewCounterVec(reg, "swarmgate_control_rejected_streams_total",
			"Streams refused, by reason: not_ready, too_many, bad_request, closing.", "reason"),
	}
}
