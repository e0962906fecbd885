package discovery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/swarmgate/swarmgate/internal/metrics"
	"github.com/swarmgate/swarmgate/internal/opt"
	"github.com/swarmgate/swarmgate/route"
)

// Defaults of SwarmOptions and fixed timings of the Swarm source.
const (
	DefaultSwarmResync   = 5 * time.Minute
	DefaultSwarmFastPoll = 250 * time.Millisecond
	DefaultSwarmDebounce = 50 * time.Millisecond

	swarmRequestTimeout = 10 * time.Second // one API call; a stuck proxy must not stall the source
	swarmMinBackoff     = 100 * time.Millisecond
	swarmMaxBackoff     = 5 * time.Second
	// swarmEventGrace is how long a service an event named stays in the
	// fast polls: Swarm's orchestrator acts on a change (tasks created or
	// shut down, an update started) just after the event that announced it.
	// It is kept as a number of polls, those due within it (eventPolls), so
	// that slow polls on a loaded host do not cut it short.
	swarmEventGrace = time.Second
)

// SwarmOptions configure the Swarm source.
type SwarmOptions struct {
	// Host is the Docker Engine API address: "unix:///var/run/docker.sock"
	// on a single host, "tcp://socket-proxy:2375" in production. If empty,
	// the DOCKER_HOST conventions apply (DOCKER_HOST, DOCKER_TLS_VERIFY,
	// DOCKER_CERT_PATH, DOCKER_API_VERSION).
	Host string
	// TLS, if set, is the client TLS configuration for a tcp:// host that
	// requires mutual TLS.
	TLS *tls.Config
	// Network is the overlay network the edge shares with services
	// (edge --network). A route whose labels name no network uses it when its
	// service is attached to it. If empty, a service must be attached to
	// exactly one overlay network or name one in its labels.
	Network string
	// Resync is the period of full listings, whatever happens: the safety
	// net under events and polls (see SWARM.md). If zero, 5m.
	Resync time.Duration
	// FastPoll is the task polling period while a published service
	// converges (Swarm sends no task events). If zero, 250ms.
	FastPoll time.Duration
	// Debounce coalesces bursts of events into one listing: the first event
	// starts the wait, the ones that follow within it ride along. If zero, 50ms.
	Debounce time.Duration
	// Labels are the label dialects read (--labels). If zero,
	// DefaultDialects (swarmgate, interlock).
	Labels Dialects
	// Logger receives outages, label errors and changes. If nil, nothing is logged.
	Logger *zap.Logger
	// Registerer receives the source's metrics. If nil, metrics are not exported.
	Registerer prometheus.Registerer
}

// Swarm is the Docker Engine API source: routes from the labels of Swarm
// services, endpoints from their tasks.
type Swarm struct {
	o   SwarmOptions
	cli *client.Client
	api *swarmAPI // the listings, on cli's transport
	log *zap.Logger
	m   *swarmMetrics

	status swarmStatus
}

var _ route.Source = (*Swarm)(nil)

// NewSwarm returns a Swarm source. It does not contact the API: Run and
// Snapshot do.
func NewSwarm(o SwarmOptions) (*Swarm, error) {
	opt.Positive(&o.Resync, DefaultSwarmResync)
	opt.Positive(&o.FastPoll, DefaultSwarmFastPoll)
	opt.Positive(&o.Debounce, DefaultSwarmDebounce)
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	opts := []client.Opt{client.WithAPIVersionNegotiation()}
	if o.TLS != nil {
		// WithHost configures the transport it finds, so the TLS client
		// must be in place first.
		opts = append(opts, client.WithHTTPClient(&http.Client{
			Transport:     &http.Transport{TLSClientConfig: o.TLS},
			CheckRedirect: client.CheckRedirect,
		}))
		if o.Host == "" {
			opts = append(opts, client.WithHostFromEnv(), client.WithVersionFromEnv())
		}
	} else if o.Host == "" {
		opts = append(opts, client.FromEnv)
	}
	if o.Host != "" {
		opts = append(opts, client.WithHost(o.Host))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("discovery: swarm: docker client: %w", err)
	}
	api, err := newSwarmAPI(cli, usesTLS(o))
	if err != nil {
		cli.Close()
		return nil, err
	}
	return &Swarm{o: o, cli: cli, api: api, log: log.With(zap.String("source", "swarm"), zap.String("host", cli.DaemonHost())),
		m: newSwarmMetrics(o.Registerer)}, nil
}

// Name identifies the source in logs.
func (s *Swarm) Name() string { return "swarm:" + s.cli.DaemonHost() }

// Close releases the client's idle connections.
func (s *Swarm) Close() error { return s.cli.Close() }

// Client returns the source's Docker API client, for the control plane's
// other uses of the same manager (its state in Docker configs).
func (s *Swarm) Client() *client.Client { return s.cli }

// Snapshot does one synchronous listing of services, tasks, networks and
// nodes and returns the Config it yields.
func (s *Swarm) Snapshot(ctx context.Context) (route.Config, error) {
	var c swarmCache
	st, _, err := s.list(ctx, true, listing{}, &c)
	if err != nil {
		return route.Config{}, err
	}
	return buildSwarmConfig(st, s.o.Network).Config, nil
}

// Run calls update with the Config of the first successful listing, then
// again whenever it changes, until ctx is done; it returns nil then. While the
// API is unreachable it keeps quiet (the last Config stays in force), logs
// once, and reconnects with exponential backoff.
func (s *Swarm) Run(ctx context.Context, update func(route.Config)) error {
	r := &swarmRun{s: s, update: update, logged: map[string]bool{}, watch: map[string]int{}}
	r.cache.parsed = map[string]parsedLabels{}
	r.cache.built = newSwarmMemo()
	backoff := swarmMinBackoff
	var downSince time.Time
	for {
		err := r.session(ctx, func() {
			if !downSince.IsZero() {
				s.log.Info("Docker API reachable again", zap.Duration("outage", time.Since(downSince).Round(time.Millisecond)))
				downSince = time.Time{}
			}
			backoff = swarmMinBackoff
		})
		if ctx.Err() != nil {
			return nil
		}
		s.status.set(func(st *SwarmState) { st.Connected, st.LastError = false, err.Error() })
		if downSince.IsZero() {
			downSince = time.Now()
			s.log.Warn("Docker API unreachable; keeping the last routing table and retrying", zap.Error(err))
		} else {
			s.log.Debug("Docker API still unreachable", zap.Error(err), zap.Duration("retry_in", backoff))
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, swarmMaxBackoff)
	}
}

// swarmRun is the state of one Run: what was last sent and logged.
type swarmRun struct {
	s          *Swarm
	update     func(route.Config)
	cache      swarmCache
	sent       bool
	last       route.Config    // as sent, without Changed
	converging []string        // IDs of the published services still converging
	watch      map[string]int  // IDs of published services an event named, and the polls they stay in
	logged     map[string]bool // label errors already logged (route.LabelError.Error())
}

// Kinds of listing (the kind label of swarmgate_swarm_syncs_total).
const (
	syncFull  = "full"  // everything
	syncEvent = "event" // the services events named, and those polled
	syncPoll  = "poll"  // the services that converge or an event named lately
)

// eventBatch is what the events of one debounce window ask for.
type eventBatch struct {
	at       time.Time         // when Swarm reported the first of them
	full     bool              // a full listing
	services map[string]string // else these services: name by ID ("" if the event did not say)
}

// note adds what ev asks for to b and reports whether it asks for anything.
// A service event names its service: that service is listed. A network
// connect or disconnect is a container of this engine's node starting or
// stopping: a disconnect of a task's container lists its service (the task
// may have failed; its replacement arrives through convergence), a connect
// asks for nothing (a task starting is its service converging). Any other
// network event, and node events, change what many services resolve to:
// they list everything, and are rare.
func (r *swarmRun) note(b *eventBatch, ev events.Message) bool {
	id, name := "", ""
	switch {
	case ev.Type == events.ServiceEventType:
		id, name = ev.Actor.ID, ev.Actor.Attributes["name"]
	case ev.Type == events.NetworkEventType && ev.Action == events.ActionConnect:
		return false
	case ev.Type == events.NetworkEventType && ev.Action == events.ActionDisconnect:
		if id, name = r.cache.serviceOfContainer(ev.Actor.Attributes["container"]); id == "" {
			return false
		}
	}
	if id == "" {
		b.full = true
	} else {
		if b.services == nil {
			b.services = map[string]string{}
		}
		if b.services[id] == "" {
			b.services[id] = name
		}
	}
	return true
}

// session subscribes to events, lists everything, and then follows the
// cluster until the API fails (it returns the error) or ctx is done. It
// subscribes before listing so that no change falls between the two.
func (r *swarmRun) session(ctx context.Context, connected func()) error {
	ctx, cancel := context.WithCancel(ctx)
	msgs, errs := r.s.cli.Events(ctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", string(events.ServiceEventType)),
		filters.Arg("type", string(events.NetworkEventType)),
		filters.Arg("type", string(events.NodeEventType)),
	)})
	var streamErr error
	defer func() {
		cancel()
		for range errs { // wait for the client's stream reader to end
		}
		r.s.m.request("events", streamErr)
	}()

	// connected runs once the listing succeeds, before its update: the
	// outage is over when the API answers, not when the edge has applied.
	r.s.api.reset()
	if _, err := r.sync(ctx, syncFull, nil, time.Time{}, connected); err != nil {
		return err
	}

	o := &r.s.o
	resync := time.NewTicker(o.Resync)
	defer resync.Stop()
	debounce := newIdleTimer()
	defer debounce.Stop()
	fast := newIdleTimer()
	defer fast.Stop()
	if len(r.converging) > 0 {
		fast.Reset(o.FastPoll)
	}
	var batch eventBatch
	for {
		kind, at := syncFull, time.Time{}
		var named map[string]string
		select {
		case <-ctx.Done():
			return nil
		case streamErr = <-errs:
			if streamErr == nil { // closed without a word: the stream ended
				streamErr = io.EOF
			}
			return fmt.Errorf("discovery: swarm: event stream: %w", streamErr)
		case ev := <-msgs:
			r.s.log.Debug("event", zap.String("type", string(ev.Type)), zap.String("action", string(ev.Action)),
				zap.String("id", ev.Actor.ID))
			if !r.note(&batch, ev) {
				continue
			}
			if !debounce.armed {
				batch.at = eventTime(ev)
				debounce.Reset(o.Debounce)
			}
			continue
		case <-debounce.C:
			debounce.armed = false
			at = batch.at
			if !batch.full {
				kind = syncEvent
				named = batch.services
			}
			batch = eventBatch{}
		case <-resync.C:
		case <-fast.C:
			fast.armed = false
			kind = syncPoll
		}
		kind, err := r.sync(ctx, kind, named, at, nil)
		if err != nil {
			return err
		}
		if kind == syncFull {
			// A full listing is as fresh as a resync can be.
			resync.Reset(o.Resync)
		}
		if (len(r.converging) > 0 || len(r.watch) > 0) && !fast.armed {
			fast.Reset(o.FastPoll)
		}
	}
}

// eventPolls is how many fast polls a service an event named stays in: the
// polls due within swarmEventGrace of the event's listing on an idle host,
// every fastPoll (3 at 250 ms), at least one. They are counted, not timed:
// on a loaded host a poll takes longer, and a deadline would drop the last
// ones, when Swarm's orchestrator is slow too; and a change costs the same
// requests whatever the timing (the event's listing and 2 per poll).
func eventPolls(fastPoll time.Duration) int {
	return max(1, int((swarmEventGrace+fastPoll-1)/fastPoll)-1)
}

// eventTime is when Swarm reported an event, or now if the event says not.
func eventTime(ev events.Message) time.Time {
	switch {
	case ev.TimeNano != 0:
		return time.Unix(0, ev.TimeNano)
	case ev.Time != 0:
		return time.Unix(ev.Time, 0)
	}
	return time.Now()
}

// sync lists the cluster (everything for syncFull; else the services named,
// those converging and those an event named in its last eventPolls, and
// their tasks), builds the Config and sends it if it changed. eventAt is
// when Swarm reported the event that caused the listing, zero for polls and
// resyncs: it stamps the Config's Changed. listed, if not nil, runs once the
// listing succeeded. It returns the kind of listing done: a filtered one
// falls back to a full listing when it must (see Swarm.list).
func (r *swarmRun) sync(ctx context.Context, kind string, named map[string]string, eventAt time.Time, listed func()) (string, error) {
	want := listing{names: named}
	add := func(id string) {
		if _, ok := named[id]; !ok && !slices.Contains(want.ids, id) {
			want.ids = append(want.ids, id)
		}
	}
	for _, id := range r.converging {
		add(id)
	}
	for id := range r.watch {
		add(id)
	}
	st, whole, err := r.s.list(ctx, kind == syncFull, want, &r.cache)
	if err != nil {
		r.s.m.syncErrors.Inc()
		return kind, err
	}
	if whole {
		kind = syncFull
	}
	// Each listing is one of the polls a watched service stays in; one an
	// event named starts its count again.
	for id, left := range r.watch {
		if left <= 1 {
			delete(r.watch, id)
		} else {
			r.watch[id] = left - 1
		}
	}
	for id := range named {
		if i, ok := r.cache.index[id]; ok && r.s.o.Labels.publishes(r.cache.services[i].Spec.Labels) {
			r.watch[id] = eventPolls(r.s.o.FastPoll)
		}
	}
	if listed != nil {
		listed()
	}
	res := buildSwarmConfig(st, r.s.o.Network)
	r.s.m.syncs.WithLabelValues(kind).Inc()
	r.s.m.lastSync.SetToCurrentTime()
	r.s.status.set(func(s *SwarmState) { s.Connected, s.LastSync = true, time.Now() })
	r.converging = res.ConvergingIDs
	r.logLabelErrors(res.Config.Errors)
	if r.sent && !r.changed(res) {
		return kind, nil
	}
	r.s.log.Info("routes changed", zap.String("sync", kind), zap.Int("routes", len(res.Config.Routes)),
		zap.Int("label_errors", len(res.Config.Errors)), zap.Strings("converging", res.Converging))
	cfg := res.Config
	cfg.Changed = r.stamp(st, r.changedServices(res), eventAt)
	r.sent, r.last = true, res.Config
	r.s.m.updates.Inc()
	r.update(cfg)
	r.s.status.set(func(s *SwarmState) {
		s.Synced, s.Changed, s.Routes, s.LabelErrors = true, cfg.Changed, len(cfg.Routes), len(cfg.Errors)
	})
	return kind, nil
}

// changed reports whether a build's Config differs from the last one sent.
// The build says so when it kept its results (swarmMemo): they are those of
// the build before, whose Config was sent or was the same as the one sent.
func (r *swarmRun) changed(res swarmResult) bool {
	if res.Changed != nil {
		return len(res.Changed) > 0
	}
	return !sameConfig(r.last, res.Config)
}

// changedServices names the services whose routes or label errors differ
// between the last Config sent and the one a build yields.
func (r *swarmRun) changedServices(res swarmResult) map[string]bool {
	if res.Changed != nil {
		return res.Changed
	}
	return changedServices(r.last, res.Config)
}

// stamp returns when Swarm reported the change a new Config brings: the
// newest Swarm timestamp among the services that changed (a task's status,
// a service's update) or the time of the event that caused the listing,
// whichever is earlier (an event may come after the task it finds was
// running: the earliest change is the Config's, see route.Config), else now.
// It is never later than now: workers' clocks may run ahead.
func (r *swarmRun) stamp(st swarmState, changed map[string]bool, eventAt time.Time) time.Time {
	now := time.Now()
	at := changeStamp(st, changed)
	if !eventAt.IsZero() && (at.IsZero() || eventAt.Before(at)) {
		at = eventAt
	}
	if at.IsZero() || at.After(now) {
		at = now
	}
	return at
}

// logLabelErrors logs each label error once, when it appears, rather than on
// every listing, and sets the skipped-services gauge.
func (r *swarmRun) logLabelErrors(errs []*route.LabelError) {
	now := make(map[string]bool, len(errs))
	services := map[string]bool{}
	for _, e := range errs {
		k := e.Error()
		now[k] = true
		services[e.Service] = true
		if !r.logged[k] {
			r.s.log.Warn("service skipped: invalid label", zap.String("service", e.Service),
				zap.String("label", e.Label), zap.String("value", e.Value), zap.String("reason", e.Reason))
		}
	}
	r.logged = now
	r.s.m.skipped.Set(float64(len(services)))
}

// Bounds of a filtered poll. Service IDs go into the query string (the
// socket-proxy refuses queries over 4 KiB by default), so they are sent
// pollChunk at a time; beyond maxPolledServices one listing of the whole
// cluster costs less than that many requests.
const (
	pollChunk         = 40
	maxPolledServices = 200
)

// swarmCache keeps the last listing between polls: the slow-moving parts
// (networks, nodes), which any network or node event lists again, and the
// services and tasks, into which polls merge those of the services polled.
type swarmCache struct {
	networks []swarmNetwork
	nodes    []swarmNode
	valid    bool // networks and nodes listed

	services []swarmService
	index    map[string]int         // position in services by service ID
	tasks    map[string][]swarmTask // by service ID, desired state running
	listed   bool                   // services and tasks listed

	parsed map[string]parsedLabels // labels parsed by the last builds (swarmState.Parsed); nil: none kept
	built  *swarmMemo              // what the last builds derived (swarmState.Built); nil: none kept
}

// serviceOfContainer returns the ID and name of the service whose cached
// task runs container id, or "".
func (c *swarmCache) serviceOfContainer(id string) (string, string) {
	if id == "" {
		return "", ""
	}
	for sid, ts := range c.tasks {
		for i := range ts {
			if cs := ts[i].Status.ContainerStatus; cs != nil && cs.ContainerID == id {
				if j, ok := c.index[sid]; ok {
					return sid, c.services[j].Spec.Name
				}
				return sid, ""
			}
		}
	}
	return "", ""
}

// publishes reports whether a service's labels are any of the dialects d
// reads (swarmgate.*, com.docker.lb.*, traefik.*): only then can its tasks
// be endpoints, and only then are they listed outside a full listing.
func (d Dialects) publishes(labels map[string]string) bool {
	d = d.or()
	for k := range labels {
		if d&DialectSwarmgate != 0 && strings.HasPrefix(k, labelPrefix) ||
			d&DialectInterlock != 0 && strings.HasPrefix(k, interlockPrefix) ||
			d&DialectTraefik != 0 && strings.HasPrefix(k, traefikPrefix) {
			return true
		}
	}
	return false
}

// listing is what a filtered listing asks for.
type listing struct {
	ids   []string          // services by ID: those polled
	names map[string]string // services by name, by ID: those events named (by ID when the name is "")
}

func (w listing) len() int { return len(w.ids) + len(w.names) }

// lister makes the API calls of one listing: each with its own timeout and
// counted; the first error stops the rest.
type lister struct {
	s   *Swarm
	ctx context.Context
	err error
}

func (l *lister) call(name string, f func(ctx context.Context) error) {
	if l.err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, swarmRequestTimeout)
	defer cancel()
	e := f(ctx)
	if e != nil && isNotFound(e) && name == "tasks" {
		// A polled service was removed between the two calls: not an
		// API failure; the caller lists the cluster instead.
		l.err = errServiceGone
		return
	}
	l.s.m.request(name, e)
	if e != nil {
		l.err = fmt.Errorf("discovery: swarm: list %s: %w", name, e)
	}
}

var errServiceGone = errors.New("discovery: swarm: a polled service is gone")

// runningTasks filters task listings to the tasks Swarm wants running:
// the others are out of rotation whatever their state, and Swarm keeps a
// history of dead tasks per slot, so this is far fewer.
func runningTasks(args ...filters.KeyValuePair) filters.Args {
	return filters.NewArgs(append(args, filters.Arg("desired-state", "running"))...)
}

// list does one listing and returns the state it yields, and whether it
// listed the whole cluster. A full listing (and the first) lists the
// services and one task listing for the whole cluster, plus networks and
// nodes. Otherwise it lists only the services ids (and their tasks) and
// merges them into the cached listing: at 50,000 tasks one listing of them
// all is some 100 MB, and a service changes only through events (which name
// it), convergence (which polls it) and the periodic resync, the safety net.
// Services an event named are listed by name (the event says it; the names
// are stable, and IDs asked for are what polls send), and only the tasks of
// services that publish routes are listed.
// It lists the cluster instead when more than maxPolledServices are asked
// for, when there is no cached listing, or when a service was removed
// between its two calls.
func (s *Swarm) list(ctx context.Context, full bool, want listing, c *swarmCache) (swarmState, bool, error) {
	l := &lister{s: s, ctx: ctx}
	if full || !c.valid {
		c.networks, c.nodes, c.valid = nil, nil, false
		l.call("networks", func(ctx context.Context) error {
			return get(ctx, s.api, "/networks", filters.NewArgs(filters.Arg("scope", "swarm")),
				func(n *swarmNetwork) { c.networks = append(c.networks, *n) })
		})
		l.call("nodes", func(ctx context.Context) error {
			return get(ctx, s.api, "/nodes", filters.NewArgs(), func(n *swarmNode) { c.nodes = append(c.nodes, *n) })
		})
		c.valid = l.err == nil
	}
	whole := full || !c.listed || want.len() > maxPolledServices
	if !whole {
		s.poll(l, want, c)
		if errors.Is(l.err, errServiceGone) {
			l.err, whole = nil, true
		}
	}
	if whole {
		// The last listing goes first, so that it is garbage by the time
		// the new one has been decoded: two listings never coexist. If this
		// one fails, the session ends and the next starts with a full
		// listing anyway.
		c.services, c.index, c.tasks, c.listed = nil, nil, nil, false
		var svcs []swarmService
		var tasks []swarmTask
		l.call("services", func(ctx context.Context) error {
			return get(ctx, s.api, "/services", filters.NewArgs(), func(v *swarmService) { svcs = append(svcs, *v) }, "status", "true")
		})
		l.call("tasks", func(ctx context.Context) error {
			return get(ctx, s.api, "/tasks", runningTasks(), func(t *swarmTask) { tasks = append(tasks, *t) })
		})
		if l.err == nil {
			c.services, c.tasks, c.listed = slices.Clip(svcs), byService(tasks), true
			c.reindex()
		}
	}
	if l.err != nil {
		c.listed = false // a poll may have merged part of its results
		return swarmState{}, whole, l.err
	}
	return swarmState{Services: c.services, TaskMap: c.tasks, Networks: c.networks, Nodes: c.nodes, Parsed: c.parsed,
		Built: c.built, Dialects: s.o.Labels}, whole, nil
}

// byService groups tasks by service ID, in place: ts is sorted, and each
// service's tasks are a window of it (capped, so that appending to one
// cannot overwrite the next).
func byService(ts []swarmTask) map[string][]swarmTask {
	slices.SortStableFunc(ts, func(a, b swarmTask) int { return strings.Compare(a.ServiceID, b.ServiceID) })
	m := map[string][]swarmTask{}
	for i := 0; i < len(ts); {
		j := i + 1
		for j < len(ts) && ts[j].ServiceID == ts[i].ServiceID {
			j++
		}
		m[ts[i].ServiceID] = ts[i:j:j]
		i = j
	}
	return m
}

// poll lists the services want asks for, and the tasks of those that
// publish routes, and merges them into c: a service that is gone leaves it,
// the tasks of a listed service replace those it had.
func (s *Swarm) poll(l *lister, want listing, c *swarmCache) {
	ids := slices.Clone(want.ids)
	var names []string
	for id, name := range want.names {
		if name == "" {
			ids = append(ids, id)
		} else if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	var svcs []swarmService
	seen := map[string]bool{}
	keep := func(v *swarmService) {
		if !seen[v.ID] {
			seen[v.ID] = true
			svcs = append(svcs, *v)
		}
	}
	for chunk := range slices.Chunk(ids, pollChunk) {
		l.call("services", func(ctx context.Context) error {
			return get(ctx, s.api, "/services", filters.NewArgs(idFilter("id", chunk)...), keep, "status", "true")
		})
	}
	for chunk := range slices.Chunk(names, pollChunk) {
		l.call("services", func(ctx context.Context) error {
			// The engine matches names by prefix.
			return get(ctx, s.api, "/services", filters.NewArgs(idFilter("name", chunk)...), func(v *swarmService) {
				if slices.Contains(chunk, v.Spec.Name) {
					keep(v)
				}
			}, "status", "true")
		})
	}
	merged := slices.Clone(ids) // every ID asked for or found
	for id := range want.names {
		if !slices.Contains(merged, id) {
			merged = append(merged, id)
		}
	}
	var found []string
	for i := range svcs {
		if !slices.Contains(merged, svcs[i].ID) {
			merged = append(merged, svcs[i].ID)
		}
		if s.o.Labels.publishes(svcs[i].Spec.Labels) {
			found = append(found, svcs[i].ID)
		}
	}
	tasks := map[string][]swarmTask{}
	for chunk := range slices.Chunk(found, pollChunk) {
		l.call("tasks", func(ctx context.Context) error {
			return get(ctx, s.api, "/tasks", runningTasks(idFilter("service", chunk)...),
				func(t *swarmTask) { tasks[t.ServiceID] = append(tasks[t.ServiceID], *t) })
		})
	}
	if l.err != nil {
		return
	}
	c.merge(merged, svcs, tasks)
}

// merge replaces the services ids (and their tasks) of the cached listing
// with svcs and tasks, the result of polling them. It works in place: the
// state of the previous listing is no longer read once its Config is built,
// and at 10,000 services a copy would be megabytes per poll.
func (c *swarmCache) merge(ids []string, svcs []swarmService, tasks map[string][]swarmTask) {
	byID := make(map[string]*swarmService, len(svcs))
	for i := range svcs {
		byID[svcs[i].ID] = &svcs[i]
	}
	gone := false
	for _, id := range ids {
		i, cached := c.index[id]
		svc := byID[id]
		switch {
		case svc != nil && cached:
			c.services[i] = *svc
		case svc != nil: // new: an event named it
			c.index[id] = len(c.services)
			c.services = append(c.services, *svc)
		case cached: // polled and gone
			gone = true
		}
		if ts := tasks[id]; svc != nil && len(ts) > 0 {
			c.tasks[id] = ts
		} else {
			delete(c.tasks, id)
		}
	}
	if gone {
		c.services = slices.DeleteFunc(c.services, func(s swarmService) bool { return byID[s.ID] == nil && slices.Contains(ids, s.ID) })
		c.reindex()
	}
}

// reindex rebuilds the position of every cached service.
func (c *swarmCache) reindex() {
	c.index = make(map[string]int, len(c.services))
	for i := range c.services {
		c.index[c.services[i].ID] = i
	}
}

// idFilter returns one filter argument per value.
func idFilter(key string, values []string) []filters.KeyValuePair {
	out := make([]filters.KeyValuePair, len(values))
	for i, v := range values {
		out[i] = filters.Arg(key, v)
	}
	return out
}

// idleTimer is a time.Timer that starts stopped and knows whether it is armed.
type idleTimer struct {
	*time.Timer
	armed bool
}

func newIdleTimer() *idleTimer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &idleTimer{Timer: t}
}

func (t *idleTimer) Reset(d time.Duration) {
	t.Timer.Reset(d)
	t.armed = true
}

// swarmMetrics are the source's Prometheus series.
type swarmMetrics struct {
	syncs      *prometheus.CounterVec // kind: full, event, poll
	syncErrors prometheus.Counter
	requests   *prometheus.CounterVec // call, result
	updates    prometheus.Counter
	skipped    prometheus.Gauge
	lastSync   prometheus.Gauge
}

func newSwarmMetrics(reg prometheus.Registerer) *swarmMetrics {
	return &swarmMetrics{
		syncs: metrics.NewCounterVec(reg, "swarmgate_swarm_syncs_total",
			"Successful listings of the Swarm, by kind: full (services, tasks, networks, nodes), event (the services events named) or poll (services converging or named by an event lately).", "kind"),
		syncErrors: metrics.NewCounter(reg, "swarmgate_swarm_sync_errors_total",
			"Listings of the Swarm that failed (the last route.Config stays in force)."),
		requests: metrics.NewCounterVec(reg, "swarmgate_swarm_api_requests_total",
			"Docker Engine API requests, by call and result (ok, error).", "call", "result"),
		updates: metrics.NewCounter(reg, "swarmgate_swarm_updates_total", "Changed Configs sent to the edge."),
		skipped: metrics.NewGauge(reg, "swarmgate_swarm_services_skipped",
			"Services skipped because of invalid labels, in the last listing."),
		lastSync: metrics.NewGauge(reg, "swarmgate_swarm_last_sync_timestamp_seconds",
			"Unix time of the last successful listing."),
	}
}

func (m *swarmMetrics) request(call string, err error) {
	result := "ok"
	if err != nil && !errors.Is(err, context.Canceled) {
		result = "error"
	}
	m.requests.WithLabelValues(call, result).Inc()
}
