// Package fakedocker is a Docker Engine API that serves a Swarm of synthetic
// services and tasks at realistic sizes, for the control plane's scale
// benchmark. It answers what discovery.Swarm calls (/_ping, /version,
// /services, /tasks, /networks, /nodes, /events) with Docker's own API types,
// counts the requests, and changes the Swarm on demand (a service added,
// scaled up, scaled down), emitting the event Swarm would.
package fakedocker

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
)

// APIVersion is the API version the fake announces; the client negotiates
// down to it.
const APIVersion = "1.47"

// Options configure a Swarm. The zero value is a Swarm of no services.
type Options struct {
	// Services is the number of services created up front.
	Services int
	// Tasks is the number of running tasks (replicas) of each service.
	Tasks int
	// Network is the name of the overlay network every service is attached
	// to (control --network). If empty, "bench-net".
	Network string
	// Nodes is the number of worker nodes tasks are spread over. If zero, 20.
	Nodes int
	// Now is the clock of timestamps and events. If nil, time.Now.
	Now func() time.Time
}

// Swarm is the fake cluster and its API. Its methods are safe for
// concurrent use.
type Swarm struct {
	o       Options
	net     network.Summary
	ingress network.Summary
	nodes   []swarm.Node

	// mu guards everything below it.
	mu       sync.Mutex
	services []*service // in creation order
	byID     map[string]*service
	nextSvc  int    // number of the next service created
	nextAddr uint32 // offset of the next task address in the overlay's subnet
	index    uint64 // Swarm's object version, bumped on every write
	gen      uint64 // bumped on every change; keys the encoded listings
	cache    map[string]cached
	subs     map[*subscriber]struct{}

	requests sync.Map     // endpoint name -> *atomic.Int64
	last     atomic.Int64 // when the last request came, Unix nanoseconds of o.Now
}

// service is one service with its tasks, desired state running first.
type service struct {
	svc   swarm.Service
	tasks []swarm.Task
}

// cached is an encoded response body of the generation gen.
type cached struct {
	gen  uint64
	body []byte
}

// subscriber is one open /events stream.
type subscriber struct {
	types map[events.Type]bool // nil: every type
	ch    chan events.Message
}

// subscriberBuffer bounds the events queued for one stream. Swarm changes
// here one at a time, so a full buffer means a stuck reader: it is closed.
const subscriberBuffer = 256

// New returns a Swarm of o.Services services of o.Tasks running tasks each.
func New(o Options) *Swarm {
	if o.Network == "" {
		o.Network = "bench-net"
	}
	if o.Nodes <= 0 {
		o.Nodes = 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Swarm{o: o, byID: map[string]*service{}, cache: map[string]cached{}, subs: map[*subscriber]struct{}{}}
	created := o.Now().Add(-24 * time.Hour).UTC()
	s.net = overlay(o.Network, "10.128.0.0/9", "10.128.0.1", false, created)
	s.ingress = overlay("ingress", "10.0.0.0/24", "10.0.0.1", true, created)
	for i := range o.Nodes {
		s.nodes = append(s.nodes, node(i, created))
	}
	for range o.Services {
		s.addServiceLocked(created)
	}
	return s
}

// ID returns a deterministic 25-character Swarm object ID for a kind and number.
func ID(kind string, n int) string {
	h := sha256.Sum256([]byte(kind + ":" + strconv.Itoa(n)))
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 25)
	for i := range b {
		b[i] = alphabet[int(h[i])%len(alphabet)]
	}
	return string(b)
}

// hexID is a 64-hex-digit ID (container IDs, network IDs, digests).
func hexID(kind string, n int) string {
	h := sha256.Sum256([]byte(kind + ":" + strconv.Itoa(n)))
	return hex.EncodeToString(h[:])
}

// ServiceName is the name of the nth service (from 0).
func ServiceName(n int) string { return fmt.Sprintf("svc%05d", n) }

// Host is the host name routed to the nth service.
func Host(n int) string { return ServiceName(n) + ".bench.test" }

func overlay(name, subnet, gateway string, ingress bool, created time.Time) network.Summary {
	return network.Summary{
		Name:       name,
		ID:         hexID("network:"+name, 0)[:25],
		Created:    created,
		Scope:      "swarm",
		Driver:     "overlay",
		Ingress:    ingress,
		Attachable: !ingress,
		IPAM:       network.IPAM{Driver: "default", Config: []network.IPAMConfig{{Subnet: subnet, Gateway: gateway}}},
		Options:    map[string]string{"com.docker.network.driver.overlay.vxlanid_list": "4097"},
		Labels:     map[string]string{},
	}
}

func node(i int, created time.Time) swarm.Node {
	return swarm.Node{
		ID:     ID("node", i),
		Meta:   swarm.Meta{Version: swarm.Version{Index: 10}, CreatedAt: created, UpdatedAt: created},
		Spec:   swarm.NodeSpec{Role: swarm.NodeRoleWorker, Availability: swarm.NodeAvailabilityActive},
		Status: swarm.NodeStatus{State: swarm.NodeStateReady, Addr: fmt.Sprintf("192.168.%d.%d", i/250, i%250+2)},
		Description: swarm.NodeDescription{
			Hostname: fmt.Sprintf("worker-%02d", i),
			Platform: swarm.Platform{Architecture: "x86_64", OS: "linux"},
			Engine:   swarm.EngineDescription{EngineVersion: "28.5.2"},
		},
	}
}

// ServiceID returns the ID of the nth service (from 0), or "" if there is none.
func (s *Swarm) ServiceID(n int) string {
	id := ID("service", n)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID[id] == nil {
		return ""
	}
	return id
}

// Counts returns the services and the running tasks of the Swarm.
func (s *Swarm) Counts() (services, tasks int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sv := range s.services {
		tasks += running(sv.tasks)
	}
	return len(s.services), tasks
}

// AddService creates a service of Options.Tasks running tasks, as
// `docker service create` followed by its tasks starting, and emits the
// service create event. It returns the service's number and the event's time.
func (s *Swarm) AddService() (n int, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at = s.o.Now()
	sv := s.addServiceLocked(at)
	s.emitLocked(sv, events.ActionCreate, at)
	return s.nextSvc - 1, at
}

// ScaleUp adds one running task to the service id, as `docker service scale`
// once the new task runs, and emits the service update event.
func (s *Swarm) ScaleUp(id string) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv := s.byID[id]
	if sv == nil {
		return time.Time{}, fmt.Errorf("fakedocker: scale up: no service %q", id)
	}
	at := s.o.Now()
	s.setReplicasLocked(sv, *sv.svc.Spec.Mode.Replicated.Replicas+1, at)
	slot := len(sv.tasks) + 1
	sv.tasks = append(sv.tasks, s.taskLocked(sv, slot, at))
	s.emitLocked(sv, events.ActionUpdate, at)
	return at, nil
}

// ScaleDown removes one task from the service id, as `docker service scale`
// does: Swarm stops wanting the task of the highest slot (its desired state
// becomes shutdown), and emits the service update event.
func (s *Swarm) ScaleDown(id string) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv := s.byID[id]
	if sv == nil {
		return time.Time{}, fmt.Errorf("fakedocker: scale down: no service %q", id)
	}
	last := -1
	for j := len(sv.tasks) - 1; j >= 0; j-- {
		if sv.tasks[j].DesiredState == swarm.TaskStateRunning {
			last = j
			break
		}
	}
	if last < 0 {
		return time.Time{}, fmt.Errorf("fakedocker: scale down: service %q has no running task", id)
	}
	at := s.o.Now()
	s.setReplicasLocked(sv, *sv.svc.Spec.Mode.Replicated.Replicas-1, at)
	t := &sv.tasks[last]
	s.index++
	t.Version.Index = s.index
	t.UpdatedAt = at.UTC()
	t.DesiredState = swarm.TaskStateShutdown
	t.Status.State = swarm.TaskStateShutdown
	t.Status.Message = "shutdown"
	t.Status.Timestamp = at.UTC()
	s.emitLocked(sv, events.ActionUpdate, at)
	return at, nil
}

func (s *Swarm) setReplicasLocked(sv *service, replicas uint64, at time.Time) {
	s.index++
	sv.svc.Version.Index = s.index
	sv.svc.UpdatedAt = at.UTC()
	sv.svc.PreviousSpec = &swarm.ServiceSpec{}
	*sv.svc.PreviousSpec = sv.svc.Spec
	sv.svc.Spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &replicas}
	sv.svc.ServiceStatus = &swarm.ServiceStatus{RunningTasks: replicas, DesiredTasks: replicas}
}

// addServiceLocked creates the next service and its tasks, all created at at.
func (s *Swarm) addServiceLocked(at time.Time) *service {
	n := s.nextSvc
	s.nextSvc++
	replicas := uint64(s.o.Tasks)
	name := ServiceName(n)
	s.index++
	sv := &service{svc: swarm.Service{
		ID:   ID("service", n),
		Meta: swarm.Meta{Version: swarm.Version{Index: s.index}, CreatedAt: at.UTC(), UpdatedAt: at.UTC()},
		Spec: swarm.ServiceSpec{
			Annotations: swarm.Annotations{Name: name, Labels: map[string]string{
				"com.docker.stack.image":     "registry.bench.test/app:1.4.2",
				"com.docker.stack.namespace": "bench",
				"swarmgate.hosts":            Host(n),
				"swarmgate.port":             "8000",
			}},
			TaskTemplate: swarm.TaskSpec{
				ContainerSpec: containerSpec(n),
				Resources: &swarm.ResourceRequirements{
					Limits:       &swarm.Limit{NanoCPUs: 500000000, MemoryBytes: 268435456},
					Reservations: &swarm.Resources{NanoCPUs: 100000000, MemoryBytes: 67108864},
				},
				RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, MaxAttempts: new(uint64)},
				Placement: &swarm.Placement{
					Constraints: []string{"node.role == worker"},
					Platforms:   []swarm.Platform{{Architecture: "amd64", OS: "linux"}},
				},
				Networks: []swarm.NetworkAttachmentConfig{{Target: s.net.ID, Aliases: []string{name}}},
				Runtime:  "container",
			},
			Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
			UpdateConfig: &swarm.UpdateConfig{Parallelism: 1, FailureAction: "pause", Monitor: 5 * time.Second, MaxFailureRatio: 0, Order: "stop-first"},
			EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP},
		},
		Endpoint: swarm.Endpoint{
			Spec:       swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP},
			VirtualIPs: []swarm.EndpointVirtualIP{{NetworkID: s.net.ID, Addr: s.nextAddrLocked() + "/9"}},
		},
		ServiceStatus: &swarm.ServiceStatus{RunningTasks: replicas, DesiredTasks: replicas},
	}}
	for slot := 1; slot <= s.o.Tasks; slot++ {
		sv.tasks = append(sv.tasks, s.taskLocked(sv, slot, at))
	}
	s.services = append(s.services, sv)
	s.byID[sv.svc.ID] = sv
	s.gen++
	return sv
}

func containerSpec(n int) *swarm.ContainerSpec {
	name := ServiceName(n)
	return &swarm.ContainerSpec{
		Image:  "registry.bench.test/app:1.4.2@sha256:" + hexID("image", 1),
		Labels: map[string]string{"com.docker.stack.namespace": "bench"},
		Env: []string{
			"APP_NAME=" + name,
			"APP_ENV=production",
			"LOG_LEVEL=info",
			"LISTEN_ADDR=:8000",
			"DATABASE_URL=postgres://app@db.bench.test:5432/" + name + "?sslmode=require",
			"CACHE_URL=redis://cache.bench.test:6379/0",
			"OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector.bench.test:4318",
			"FEATURE_FLAGS=search,checkout-v2,recommendations",
		},
		Init:            new(bool),
		StopGracePeriod: new(time.Duration),
		DNSConfig:       &swarm.DNSConfig{},
		Isolation:       "default",
	}
}

// nextAddrLocked returns the next free address of the overlay's subnet.
func (s *Swarm) nextAddrLocked() string {
	s.nextAddr++
	base := netip.MustParseAddr("10.128.0.1").As4()
	v := binary.BigEndian.Uint32(base[:]) + s.nextAddr
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b).String()
}

// taskLocked returns a running task of sv in slot, started at at: the same
// fields, and about the same size (2 KB of JSON), as Swarm's.
func (s *Swarm) taskLocked(sv *service, slot int, at time.Time) swarm.Task {
	s.index++
	s.gen++
	seq := int(s.index)
	nd := s.nodes[seq%len(s.nodes)]
	at = at.UTC()
	return swarm.Task{
		ID:          ID("task", seq),
		Meta:        swarm.Meta{Version: swarm.Version{Index: s.index}, CreatedAt: at, UpdatedAt: at},
		Annotations: swarm.Annotations{Labels: map[string]string{}},
		Spec:        sv.svc.Spec.TaskTemplate,
		ServiceID:   sv.svc.ID,
		Slot:        slot,
		NodeID:      nd.ID,
		Status: swarm.TaskStatus{
			Timestamp: at,
			State:     swarm.TaskStateRunning,
			Message:   "started",
			ContainerStatus: &swarm.ContainerStatus{
				ContainerID: hexID("container", seq),
				PID:         10000 + seq%50000,
			},
			PortStatus: swarm.PortStatus{},
		},
		DesiredState: swarm.TaskStateRunning,
		NetworksAttachments: []swarm.NetworkAttachment{{
			Network: swarm.Network{
				ID:   s.net.ID,
				Meta: swarm.Meta{Version: swarm.Version{Index: 8}, CreatedAt: s.net.Created, UpdatedAt: s.net.Created},
				Spec: swarm.NetworkSpec{
					Annotations:         swarm.Annotations{Name: s.net.Name, Labels: map[string]string{}},
					DriverConfiguration: &swarm.Driver{Name: "overlay"},
					Attachable:          true,
					IPAMOptions:         &swarm.IPAMOptions{Driver: swarm.Driver{Name: "default"}, Configs: []swarm.IPAMConfig{{Subnet: "10.128.0.0/9", Gateway: "10.128.0.1"}}},
					Scope:               "swarm",
				},
				DriverState: swarm.Driver{Name: "overlay", Options: map[string]string{"com.docker.network.driver.overlay.vxlanid_list": "4097"}},
				IPAMOptions: &swarm.IPAMOptions{Driver: swarm.Driver{Name: "default"}, Configs: []swarm.IPAMConfig{{Subnet: "10.128.0.0/9", Gateway: "10.128.0.1"}}},
			},
			Addresses: []string{s.nextAddrLocked() + "/9"},
		}},
	}
}

func running(ts []swarm.Task) int {
	n := 0
	for i := range ts {
		if ts[i].DesiredState == swarm.TaskStateRunning && ts[i].Status.State == swarm.TaskStateRunning {
			n++
		}
	}
	return n
}

// emitLocked records a change of sv and sends its event to every stream
// that wants service events.
func (s *Swarm) emitLocked(sv *service, action events.Action, at time.Time) {
	s.gen++
	ev := events.Message{
		Type:     events.ServiceEventType,
		Action:   action,
		Actor:    events.Actor{ID: sv.svc.ID, Attributes: map[string]string{"name": sv.svc.Spec.Name}},
		Scope:    "swarm",
		Time:     at.Unix(),
		TimeNano: at.UnixNano(),
	}
	for sub := range s.subs {
		if sub.types != nil && !sub.types[ev.Type] {
			continue
		}
		select {
		case sub.ch <- ev:
		default: // a stuck reader: end its stream
			close(sub.ch)
			delete(s.subs, sub)
		}
	}
}

// Requests returns the number of API requests served, by endpoint
// ("_ping", "version", "services", "tasks", "networks", "nodes", "events",
// "other").
func (s *Swarm) Requests() map[string]int64 {
	out := map[string]int64{}
	s.requests.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// LastRequest returns when the last API request came (zero before the
// first): a driver waits for it to lie far enough behind to know that the
// control plane is done with a change (see cmd/scalerun).
func (s *Swarm) LastRequest() time.Time {
	if n := s.last.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

func (s *Swarm) count(endpoint string) {
	v, _ := s.requests.LoadOrStore(endpoint, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
	s.last.Store(s.o.Now().UnixNano())
}

// versionPrefix matches the optional /v1.NN of a request path.
var versionPrefix = regexp.MustCompile(`^/v[0-9]+\.[0-9]+`)

// ServeHTTP serves the API. Only GET (and HEAD of /_ping) is supported:
// the control plane only reads.
func (s *Swarm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := versionPrefix.ReplaceAllString(r.URL.Path, "")
	w.Header().Set("Api-Version", APIVersion)
	w.Header().Set("Ostype", "linux")
	w.Header().Set("Swarm", "active/manager")
	name := "other"
	switch path {
	case "/_ping", "/version", "/services", "/tasks", "/networks", "/nodes", "/events":
		name = path[1:]
	}
	s.count(name)
	if r.Method != http.MethodGet && !(r.Method == http.MethodHead && name == "_ping") {
		apiError(w, http.StatusMethodNotAllowed, fmt.Sprintf("fakedocker: %s %s is not supported", r.Method, path))
		return
	}
	args, err := filters.FromJSON(r.URL.Query().Get("filters"))
	if err != nil {
		apiError(w, http.StatusBadRequest, fmt.Sprintf("fakedocker: filters: %v", err))
		return
	}
	switch name {
	case "_ping":
		w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("OK"))
	case "version":
		writeJSON(w, types.Version{
			Version: "28.5.2", APIVersion: APIVersion, MinAPIVersion: "1.24", Os: "linux", Arch: "amd64",
			GoVersion: "go1.24.9", KernelVersion: "6.1.0",
		})
	case "services":
		s.serveServices(w, args, r.URL.Query().Get("status") == "true")
	case "tasks":
		s.serveTasks(w, args)
	case "networks":
		s.serveNetworks(w, args)
	case "nodes":
		writeJSON(w, s.nodes)
	case "events":
		s.serveEvents(w, r, args)
	default:
		apiError(w, http.StatusNotFound, "page not found")
	}
}

// serveServices lists the services, filtered by id and name; with status,
// each with its running and desired task counts. The unfiltered listing is
// encoded once per generation, as it is the one every full listing asks for.
func (s *Swarm) serveServices(w http.ResponseWriter, args filters.Args, status bool) {
	if err := args.Validate(map[string]bool{"id": true, "name": true, "label": true, "mode": true}); err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if args.Len() == 0 {
		s.writeCachedLocked(w, "services:"+strconv.FormatBool(status), func() any { return s.servicesLocked(args, status) })
		return
	}
	writeJSON(w, s.servicesLocked(args, status))
}

func (s *Swarm) servicesLocked(args filters.Args, status bool) []swarm.Service {
	out := []swarm.Service{}
	for _, sv := range s.services {
		if args.Contains("id") && !args.ExactMatch("id", sv.svc.ID) {
			continue
		}
		if args.Contains("name") && !args.ExactMatch("name", sv.svc.Spec.Name) {
			continue
		}
		svc := sv.svc
		if !status {
			svc.ServiceStatus = nil
		}
		out = append(out, svc)
	}
	return out
}

// serveTasks lists the tasks, filtered by service ID and desired state. The
// listing of every task Swarm wants running is encoded once per generation.
func (s *Swarm) serveTasks(w http.ResponseWriter, args filters.Args) {
	if err := args.Validate(map[string]bool{"service": true, "desired-state": true, "id": true, "node": true, "name": true, "label": true}); err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if keys := args.Keys(); len(keys) == 0 || (len(keys) == 1 && keys[0] == "desired-state") {
		s.writeCachedLocked(w, tasksKey(args), func() any { return s.tasksLocked(args) })
		return
	}
	writeJSON(w, s.tasksLocked(args))
}

// tasksKey is the cache key of a task listing filtered by desired state only.
func tasksKey(args filters.Args) string {
	states := args.Get("desired-state")
	slices.Sort(states)
	return fmt.Sprint("tasks:", states)
}

func (s *Swarm) tasksLocked(args filters.Args) []swarm.Task {
	out := []swarm.Task{}
	for _, sv := range s.services {
		if args.Contains("service") && !args.ExactMatch("service", sv.svc.ID) && !args.ExactMatch("service", sv.svc.Spec.Name) {
			continue
		}
		for _, t := range sv.tasks {
			if args.Contains("desired-state") && !args.ExactMatch("desired-state", string(t.DesiredState)) {
				continue
			}
			if args.Contains("id") && !args.ExactMatch("id", t.ID) {
				continue
			}
			if args.Contains("node") && !args.ExactMatch("node", t.NodeID) {
				continue
			}
			out = append(out, t)
		}
	}
	return out
}

// serveNetworks lists the overlay networks (the bench network and ingress),
// filtered by scope, name and driver.
func (s *Swarm) serveNetworks(w http.ResponseWriter, args filters.Args) {
	out := []network.Summary{}
	for _, n := range []network.Summary{s.ingress, s.net} {
		if args.Contains("scope") && !args.ExactMatch("scope", n.Scope) {
			continue
		}
		if args.Contains("name") && !args.ExactMatch("name", n.Name) {
			continue
		}
		if args.Contains("driver") && !args.ExactMatch("driver", n.Driver) {
			continue
		}
		out = append(out, n)
	}
	writeJSON(w, out)
}

// serveEvents streams the events of the types args name (every type if
// none) as they happen, one JSON object per line, until the client goes away.
func (s *Swarm) serveEvents(w http.ResponseWriter, r *http.Request, args filters.Args) {
	sub := &subscriber{ch: make(chan events.Message, subscriberBuffer)}
	if vs := args.Get("type"); len(vs) > 0 {
		sub.types = map[events.Type]bool{}
		for _, v := range vs {
			sub.types[events.Type(v)] = true
		}
	}
	s.mu.Lock()
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, sub) // no-op when emitLocked already dropped it
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	flush()
	enc := json.NewEncoder(w)
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-sub.ch:
			if !ok {
				return
			}
			if err := enc.Encode(ev); err != nil {
				return
			}
			flush()
		}
	}
}

// writeCachedLocked writes the body cached under key for the current
// generation, encoding it with build first if the Swarm changed since.
func (s *Swarm) writeCachedLocked(w http.ResponseWriter, key string, build func() any) {
	c, ok := s.cache[key]
	if !ok || c.gen != s.gen {
		body, err := json.Marshal(build())
		if err != nil {
			apiError(w, http.StatusInternalServerError, fmt.Sprintf("fakedocker: encode %s: %v", key, err))
			return
		}
		c = cached{gen: s.gen, body: append(body, '\n')}
		s.cache[key] = c
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(c.body)))
	w.Write(c.body)
}

// Warm encodes the full listings ahead of the first request, so that the
// control plane's start is not charged for the fake's encoding.
func (s *Swarm) Warm() {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := filters.NewArgs()
	running := filters.NewArgs(filters.Arg("desired-state", "running"))
	for _, b := range []struct {
		key   string
		build func() any
	}{
		{"services:true", func() any { return s.servicesLocked(all, true) }},
		{tasksKey(running), func() any { return s.tasksLocked(running) }},
	} {
		if body, err := json.Marshal(b.build()); err == nil {
			s.cache[b.key] = cached{gen: s.gen, body: append(body, '\n')}
		}
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		apiError(w, http.StatusInternalServerError, fmt.Sprintf("fakedocker: encode: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(body, '\n'))
}

// apiError answers as the Engine does: {"message": ...}.
func apiError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"message": msg})
}
