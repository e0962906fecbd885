package discovery

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/swarmgate/swarmgate/route"
)

// swarmState is one listing of the cluster: everything a Swarm Config is
// computed from, in the reduced forms of the API's types (swarm_api.go).
type swarmState struct {
	Services []swarmService
	Tasks    []swarmTask // the tasks of every service, one TaskList for the cluster
	// TaskMap, if not nil, holds the tasks by service ID and Tasks is
	// ignored: the form the source's cache keeps between polls, so that a
	// poll replaces the tasks of a few services without copying the others.
	TaskMap  map[string][]swarmTask
	Networks []swarmNetwork
	Nodes    []swarmNode // nil when unknown: every node counts as up
	// Parsed, if not nil, keeps each service's parsed labels from one build
	// to the next, by service ID: a service whose version has not moved is
	// not parsed again. At 10,000 services parsing is most of a build.
	Parsed map[string]parsedLabels
	// Dialects are the label dialects read; zero is DefaultDialects.
	Dialects Dialects
	// Built, if not nil, keeps what each build derived from each service,
	// from one build to the next (swarmMemo): a build then computes only
	// the services that changed, and says which.
	Built *swarmMemo
}

// parsedLabels is what ParseLabelsFor returned for a version of a service.
type parsedLabels struct {
	version uint64
	routes  []route.Route
	errs    []*route.LabelError
}

// parse returns ParseLabelsFor of svc, from st.Parsed when its version is there.
// The routes are a copy that the caller may fill in; errs must only be
// appended to.
func (st *swarmState) parse(svc *swarmService) ([]route.Route, []*route.LabelError) {
	v := svc.Version.Index
	if p, ok := st.Parsed[svc.ID]; ok && v != 0 && p.version == v {
		return slices.Clone(p.routes), p.errs
	}
	routes, errs := ParseLabelsFor(svc.Spec.Name, svc.Spec.Labels, st.Dialects)
	if st.Parsed != nil && v != 0 {
		st.Parsed[svc.ID] = parsedLabels{version: v, routes: slices.Clip(slices.Clone(routes)), errs: slices.Clip(errs)}
	}
	return routes, errs
}

// tasksByService returns the state's tasks grouped by service ID.
func (st *swarmState) tasksByService() map[string][]swarmTask {
	if st.TaskMap != nil {
		return st.TaskMap
	}
	return groupTasks(st.Tasks)
}

func groupTasks(ts []swarmTask) map[string][]swarmTask {
	m := map[string][]swarmTask{}
	for _, t := range ts {
		m[t.ServiceID] = append(m[t.ServiceID], t)
	}
	return m
}

// swarmResult is what one listing yields.
type swarmResult struct {
	Config route.Config
	// Converging names the published services whose tasks are still moving
	// (an update in progress, replicas not all running, a VIP not yet
	// allocated): while any is, tasks are polled fast.
	Converging []string
	// ConvergingIDs are the IDs of the Converging services, in the same
	// order: what a fast poll lists.
	ConvergingIDs []string
	// Changed, with a swarmMemo (swarmState.Built), names the services
	// whose routes or label errors differ from the last build's
	// (changedServices of the two Configs); nil without one.
	Changed map[string]bool
}

// netRef is an overlay network a service is attached to.
type netRef struct{ ID, Name string }

// buildSwarmConfig turns one listing into a Config: the labels of every
// service are parsed, the network of every route is chosen and its endpoints
// resolved. edgeNetwork is the network the edge shares with services
// (edge --network); "" when not given. Output is deterministic (services in
// name order, endpoints sorted) so that two listings of an unchanged cluster
// compare equal. With st.Built, what is as it was at the last build is
// reused, not computed again, and the result names the services that
// changed (swarmMemo).
func buildSwarmConfig(st swarmState, edgeNetwork string) swarmResult {
	memo := st.Built
	reuse := memo != nil && memo.sameCluster(st, edgeNetwork)
	var e *buildEnv // built when a service is computed
	env := func() *buildEnv {
		if e == nil {
			e = newBuildEnv(st, edgeNetwork)
		}
		return e
	}
	tasks := st.tasksByService()
	order := sortedServices(st.Services, memo)

	res := swarmResult{}
	if len(st.Parsed) > len(order) { // services gone since the last build
		ids := make(map[string]bool, len(order))
		for _, ref := range order {
			ids[ref.id] = true
		}
		maps.DeleteFunc(st.Parsed, func(id string, _ parsedLabels) bool { return !ids[id] })
	}
	if memo != nil {
		memo.gen++
		res.Changed = map[string]bool{}
	}
	built := make([]*builtService, len(order))
	for i, ref := range order {
		svc := &st.Services[ref.idx]
		ts := tasks[svc.ID]
		var b *builtService
		if memo != nil {
			b = memo.services[svc.ID]
		}
		if !reuse || b == nil || !b.current(svc, ts) {
			nb := st.buildService(svc, ts, env())
			if memo != nil {
				if !b.sameResult(nb) {
					res.Changed[nb.name] = true
					if b != nil {
						res.Changed[b.name] = true
					}
				}
				memo.services[svc.ID] = nb
			}
			b = nb
		}
		if memo != nil {
			b.gen = memo.gen
		}
		built[i] = b
		if b.converging {
			res.Converging = append(res.Converging, svc.Spec.Name)
			res.ConvergingIDs = append(res.ConvergingIDs, svc.ID)
		}
	}
	if memo != nil {
		if len(memo.services) > len(order) { // services gone since the last build
			for id, b := range memo.services {
				if b.gen != memo.gen {
					if len(b.routes) > 0 || len(b.errs) > 0 {
						res.Changed[b.name] = true
					}
					delete(memo.services, id)
				}
			}
		}
	}
	if memo != nil && memo.config.Routes != nil && len(res.Changed) == 0 {
		// The routes and errors of the last build, in the same order: its
		// Config is this one (Configs are read-only).
		res.Config = memo.config
	} else {
		res.Config = route.Config{Routes: make([]route.Route, 0, len(order))}
		for _, b := range built {
			res.Config.Routes = append(res.Config.Routes, b.routes...)
			res.Config.Errors = append(res.Config.Errors, b.errs...)
		}
	}
	if memo != nil {
		memo.remember(st, edgeNetwork, order, res.Config)
	}
	return res
}

// swarmMemo keeps what buildSwarmConfig derived from each service (its
// routes with their endpoints, its label errors, whether it converges) and
// the services' order, from one build to the next. A service whose version,
// status and task slice are as they were, in a cluster whose network and
// node listings are the same slices as at the last build, is not computed
// again: a change to one service costs that service, not 10,000 services'
// endpoints. It relies on what swarmCache does: a listing that changes a
// service's tasks replaces its slice in the TaskMap and never modifies one
// in place, and the network and node listings are replaced, not modified,
// when listed again. Not safe for concurrent use.
type swarmMemo struct {
	gen      uint64 // the count of builds: marks the services the last one met
	edge     string // what the results were computed for
	dialects Dialects
	networks []swarmNetwork // the listings they were computed from, by identity
	nodes    []swarmNode
	services map[string]*builtService // by service ID
	order    []serviceRef             // the services of the last build, in name order
	config   route.Config             // the last build's Config
}

func newSwarmMemo() *swarmMemo { return &swarmMemo{services: map[string]*builtService{}} }

// sameCluster reports whether st's networks and nodes, edge network and
// dialects are those the remembered results were computed with.
func (m *swarmMemo) sameCluster(st swarmState, edge string) bool {
	return m.edge == edge && m.dialects == st.Dialects && sameSlice(m.networks, st.Networks) && sameSlice(m.nodes, st.Nodes)
}

func (m *swarmMemo) remember(st swarmState, edge string, order []serviceRef, cfg route.Config) {
	m.edge, m.dialects, m.networks, m.nodes, m.order, m.config = edge, st.Dialects, st.Networks, st.Nodes, order, cfg
}

// sameSlice reports whether a and b are the same slice: the same elements
// in the same memory, not merely equal ones.
func sameSlice[T any](a, b []T) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// builtService is what a build derived from one service.
type builtService struct {
	gen uint64 // the build that last met it
	// What it was derived from: the service's version and what of it is
	// not versioned (its status, listed with it), and its tasks.
	version    uint64
	updatedAt  time.Time
	status     serviceStatus
	tasks      []swarmTask
	name       string
	routes     []route.Route       // nil when it has errors
	errs       []*route.LabelError // the service is skipped when there are any
	converging bool
}

// serviceStatus is the part of a service's listing that convergence reads
// beside its spec: the update's state and the tasks desired.
type serviceStatus struct {
	update  swarm.UpdateState
	desired uint64
	listed  bool // ServiceStatus was listed
}

func statusOf(svc *swarmService) serviceStatus {
	var s serviceStatus
	if svc.UpdateStatus != nil {
		s.update = svc.UpdateStatus.State
	}
	if svc.ServiceStatus != nil {
		s.desired, s.listed = svc.ServiceStatus.DesiredTasks, true
	}
	return s
}

// current reports whether b was derived from svc as it is, with tasks ts.
// A service listed with no version (Version.Index 0) is never current.
func (b *builtService) current(svc *swarmService, ts []swarmTask) bool {
	return b.version != 0 && b.version == svc.Version.Index && b.updatedAt.Equal(svc.UpdatedAt) &&
		b.name == svc.Spec.Name && b.status == statusOf(svc) && sameSlice(b.tasks, ts)
}

// sameResult reports whether b (nil: a service that was not there) and c
// bring the same routes and label errors to the Config.
func (b *builtService) sameResult(c *builtService) bool {
	if b == nil {
		return len(c.routes) == 0 && len(c.errs) == 0
	}
	return b.name == c.name && slices.EqualFunc(b.routes, c.routes, func(x, y route.Route) bool { return route.Same(&x, &y) }) &&
		reflect.DeepEqual(b.errs, c.errs)
}

// serviceRef is a service of the listing: its name and ID, which order it,
// and where it is in swarmState.Services.
type serviceRef struct {
	name, id string
	idx      int
}

func compareRefs(a, b serviceRef) int {
	return cmp.Or(strings.Compare(a.name, b.name), strings.Compare(a.id, b.id))
}

// sortedServices returns the services in name order (then ID). With a memo
// whose order still describes services (every service it names is at the
// same place, with the same name) and services appended since, it inserts
// those rather than sorting 10,000 services again.
func sortedServices(services []swarmService, memo *swarmMemo) []serviceRef {
	if memo != nil && len(memo.order) <= len(services) {
		old := memo.order
		ok := true
		for _, ref := range old {
			if ref.idx >= len(old) || services[ref.idx].ID != ref.id || services[ref.idx].Spec.Name != ref.name {
				ok = false
				break
			}
		}
		if ok && len(old) == len(services) {
			return old // never modified: a new order is a copy
		}
		if ok { // old covers services[:len(old)], each index once
			order := slices.Clone(old)
			for i := len(old); i < len(services); i++ {
				ref := serviceRef{name: services[i].Spec.Name, id: services[i].ID, idx: i}
				at, _ := slices.BinarySearchFunc(order, ref, compareRefs)
				order = slices.Insert(order, at, ref)
			}
			return order
		}
	}
	order := make([]serviceRef, len(services))
	for i := range services {
		order[i] = serviceRef{name: services[i].Spec.Name, id: services[i].ID, idx: i}
	}
	slices.SortFunc(order, compareRefs)
	return order
}

// buildEnv is what computing a service's routes reads of the cluster.
type buildEnv struct {
	nets, byName map[string]swarmNetwork // by ID, by name
	down         map[string]bool         // nodes down or disconnected
	edge         string
}

func newBuildEnv(st swarmState, edge string) *buildEnv {
	e := &buildEnv{
		nets:   make(map[string]swarmNetwork, len(st.Networks)),
		byName: make(map[string]swarmNetwork, len(st.Networks)),
		down:   map[string]bool{},
		edge:   edge,
	}
	for _, n := range st.Networks {
		e.nets[n.ID] = n
	}
	for _, n := range st.Networks {
		e.byName[n.Name] = n
	}
	for _, n := range st.Nodes {
		if n.Status.State == swarm.NodeStateDown || n.Status.State == swarm.NodeStateDisconnected {
			e.down[n.ID] = true
		}
	}
	return e
}

// buildService derives a service's routes (with their networks and
// endpoints) or label errors, and whether it converges, from the service
// and its tasks ts.
func (st *swarmState) buildService(svc *swarmService, ts []swarmTask, e *buildEnv) *builtService {
	b := &builtService{version: svc.Version.Index, updatedAt: svc.UpdatedAt, status: statusOf(svc), tasks: ts, name: svc.Spec.Name}
	routes, errs := st.parse(svc)
	if len(errs) > 0 {
		b.errs = errs
		return b
	}
	if len(routes) == 0 {
		return b
	}
	attached := attachedNetworks(svc, e.nets, e.byName)
	pending := false
	for j := range routes {
		r := &routes[j]
		r.ServiceID = svc.ID
		r.CreatedAt = svc.CreatedAt
		n, lerr := chooseNetwork(svc, r, attached, e.byName, e.edge)
		if lerr == nil {
			r.Network = n.Name
			if r.Backend == route.BackendVIP {
				var ok bool
				r.Endpoints, ok, lerr = vipEndpoints(svc, r, n)
				pending = pending || !ok
			} else {
				r.Endpoints = taskEndpoints(ts, n.ID, r.Port, e.down)
			}
		}
		if lerr != nil {
			errs = append(errs, lerr)
		}
	}
	if len(errs) > 0 {
		b.errs = slices.Clip(errs)
		return b
	}
	b.routes = routes
	b.converging = pending || converging(svc, ts)
	return b
}

// attachedNetworks lists the overlay networks of a service's tasks, ingress
// excluded (it only carries the routing mesh's published ports), in name
// order. A target Swarm reports by ID is named from the network list.
func attachedNetworks(svc *swarmService, nets, byName map[string]swarmNetwork) []netRef {
	targets := svc.Spec.TaskTemplate.Networks
	if len(targets) == 0 {
		targets = svc.Spec.Networks // services created through the pre-1.25 API
	}
	var out []netRef
	seen := map[string]bool{}
	for _, t := range targets {
		n, ok := nets[t.Target]
		if !ok {
			n, ok = byName[t.Target]
		}
		if !ok {
			// Not in the list (removed meanwhile, or listed before it
			// existed): still attached, known by its ID only.
			n = swarmNetwork{ID: t.Target, Name: t.Target}
		}
		if n.Ingress || seen[n.ID] {
			continue
		}
		seen[n.ID] = true
		out = append(out, netRef{ID: n.ID, Name: n.Name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// chooseNetwork picks the network whose addresses a route uses: the one its
// labels name, else the edge's network when the service is attached to it,
// else the service's only network. Anything else is an error on the service,
// never a guess: a wrong pick would route to addresses the edge cannot reach.
func chooseNetwork(svc *swarmService, r *route.Route, attached []netRef, byName map[string]swarmNetwork, edge string) (netRef, *route.LabelError) {
	label, value := routeLabel(svc.Spec.Labels, r.Name, keyNetwork)
	fail := func(format string, args ...any) (netRef, *route.LabelError) {
		return netRef{}, &route.LabelError{Service: svc.Spec.Name, Label: label, Value: value, Reason: fmt.Sprintf(format, args...)}
	}
	if r.Network != "" {
		for _, n := range attached {
			if n.Name == r.Network || n.ID == r.Network {
				return n, nil
			}
		}
		if _, ok := byName[r.Network]; !ok {
			return fail("no overlay network %q exists", r.Network)
		}
		return fail("the service is not attached to network %q (attached: %s)", r.Network, netNames(attached))
	}
	if edge != "" {
		for _, n := range attached {
			if n.Name == edge || n.ID == edge {
				return n, nil
			}
		}
	}
	switch len(attached) {
	case 1:
		return attached[0], nil
	case 0:
		if edge != "" {
			return fail("the service is attached to no overlay network; attach it to %q, the edge's network", edge)
		}
		return fail("the service is attached to no overlay network; attach it to the network the edge shares with it")
	default:
		return fail("the service is attached to several networks (%s) and none is the edge's; name one in %s", netNames(attached), label)
	}
}

// routeLabel returns the label a route's key came from, and its value: the
// route's own swarmgate.routes.<name>.<key>, else the service-level
// swarmgate.<key>, else the Interlock com.docker.lb.<key>. When none is set it
// returns the label that should be.
func routeLabel(labels map[string]string, route, key string) (string, string) {
	cands := []string{labelPrefix + key, interlockPrefix + key}
	if route != "" {
		cands = append([]string{namedPrefix + route + "." + key}, cands...)
	}
	for _, l := range cands {
		if v, ok := labels[l]; ok {
			return l, v
		}
	}
	return cands[0], ""
}

func netNames(ns []netRef) string {
	if len(ns) == 0 {
		return "none"
	}
	names := make([]string, len(ns))
	for i, n := range ns {
		names[i] = n.Name
	}
	return strings.Join(names, ", ")
}

// inRotation reports whether a task takes traffic: Swarm wants it running
// and it runs. A task with a health check stays "starting" until the check
// passes, so running implies healthy; a task whose desired state moved on
// (scale-down, update, drain) leaves at once, before its container stops.
func inRotation(t *swarmTask) bool {
	return t.DesiredState == swarm.TaskStateRunning && t.Status.State == swarm.TaskStateRunning
}

// taskEndpoints returns "ip:port" of every task in rotation on network netID,
// sorted, skipping tasks on nodes that are down (Swarm may not have noticed
// the task is gone yet). nil when there are none: the route still exists and
// answers 503.
func taskEndpoints(tasks []swarmTask, netID string, port int, down map[string]bool) []string {
	var out []string
	for i := range tasks {
		t := &tasks[i]
		if !inRotation(t) || down[t.NodeID] {
			continue
		}
		for _, a := range t.NetworksAttachments {
			if a.Network.ID != netID || len(a.Addresses) == 0 {
				continue
			}
			if ep := endpointOf(a.Addresses[0], port); ep != "" {
				out = append(out, ep)
			}
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// vipEndpoints returns the service's virtual IP on the network. ok is false
// while Swarm has not allocated it yet (just after the service is created).
func vipEndpoints(svc *swarmService, r *route.Route, n netRef) (eps []string, ok bool, _ *route.LabelError) {
	if svc.Spec.EndpointSpec != nil && svc.Spec.EndpointSpec.Mode == swarm.ResolutionModeDNSRR {
		label, value := routeLabel(svc.Spec.Labels, r.Name, keyBackend)
		return nil, true, &route.LabelError{Service: svc.Spec.Name, Label: label, Value: value,
			Reason: "backend vip needs a virtual IP, but the service uses endpoint mode dnsrr; use backend task"}
	}
	for _, v := range svc.Endpoint.VirtualIPs {
		if v.NetworkID == n.ID {
			if ep := endpointOf(v.Addr, r.Port); ep != "" {
				return []string{ep}, true, nil
			}
		}
	}
	return nil, false, nil
}

// endpointOf returns "ip:port" of an address Swarm writes ("10.0.1.5/24"),
// or "" if it is none. It parses with net/netip, which allocates nothing
// (a full build parses 50,000 task addresses at bench/scale), and writes the
// address as net.IP does (an IPv4-mapped address as IPv4), so that it is
// what addrIP and net.JoinHostPort would make of it.
func endpointOf(cidr string, port int) string {
	var a netip.Addr
	if p, err := netip.ParsePrefix(cidr); err == nil {
		a = p.Addr()
	} else if a, err = netip.ParseAddr(cidr); err != nil || a.Zone() != "" {
		// Not what Swarm writes: net's parsers are the reference.
		if ip := addrIP(cidr); ip != "" {
			return net.JoinHostPort(ip, strconv.Itoa(port))
		}
		return ""
	}
	if port < 0 || port > 65535 {
		return net.JoinHostPort(a.Unmap().String(), strconv.Itoa(port))
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port)).String()
}

// addrIP strips the prefix length Swarm writes after addresses ("10.0.1.5/24").
func addrIP(cidr string) string {
	if ip, _, err := net.ParseCIDR(cidr); err == nil {
		return ip.String()
	}
	if ip := net.ParseIP(cidr); ip != nil {
		return ip.String()
	}
	return ""
}

// converging reports whether a service's tasks are still moving, so that
// polling them fast pays off: an update or rollback in progress, fewer tasks
// running than wanted, or a task that Swarm wants running but is not yet
// (pending, starting, waiting for its health check).
func converging(svc *swarmService, tasks []swarmTask) bool {
	if u := svc.UpdateStatus; u != nil && (u.State == swarm.UpdateStateUpdating || u.State == swarm.UpdateStateRollbackStarted) {
		return true
	}
	running := uint64(0)
	for i := range tasks {
		t := &tasks[i]
		if t.DesiredState != swarm.TaskStateRunning {
			continue
		}
		if t.Status.State != swarm.TaskStateRunning {
			return true
		}
		running++
	}
	switch m := svc.Spec.Mode; {
	case m.Replicated != nil && m.Replicated.Replicas != nil:
		return running != *m.Replicated.Replicas
	case m.Global != nil && svc.ServiceStatus != nil:
		return running != svc.ServiceStatus.DesiredTasks
	}
	return false
}

// changedServices returns the names of the services whose routes or label
// errors differ between two Configs.
func changedServices(old, new route.Config) map[string]bool {
	type parts struct {
		routes []*route.Route
		errors []*route.LabelError
	}
	group := func(c route.Config) map[string]*parts {
		m := map[string]*parts{}
		get := func(svc string) *parts {
			p := m[svc]
			if p == nil {
				p = &parts{}
				m[svc] = p
			}
			return p
		}
		for i := range c.Routes {
			p := get(c.Routes[i].Service)
			p.routes = append(p.routes, &c.Routes[i])
		}
		for _, e := range c.Errors {
			p := get(e.Service)
			p.errors = append(p.errors, e)
		}
		return m
	}
	a, b := group(old), group(new)
	out := map[string]bool{}
	for name, x := range a {
		y := b[name]
		if y == nil || !slices.EqualFunc(x.routes, y.routes, route.Same) || !reflect.DeepEqual(x.errors, y.errors) {
			out[name] = true
		}
	}
	for name := range b {
		if _, ok := a[name]; !ok {
			out[name] = true
		}
	}
	return out
}

// sameConfig reports whether two Configs have the same routes (route.Same,
// in order) and label errors: what the source sent already.
func sameConfig(a, b route.Config) bool {
	if len(a.Routes) != len(b.Routes) {
		return false
	}
	for i := range a.Routes {
		if !route.Same(&a.Routes[i], &b.Routes[i]) {
			return false
		}
	}
	return reflect.DeepEqual(a.Errors, b.Errors)
}

// changeStamp returns when Swarm recorded the changes to the named
// services: for each, the latest of its UpdatedAt and its tasks' status
// timestamps (Swarm's store bumps UpdatedAt on every write, VIP allocation
// included); across them, the earliest, so that a Config bringing several
// changes is not credited with the latency of the last. It is zero when
// none of them is in the state (all removed). The timestamps come from the
// clocks of the managers and workers.
func changeStamp(st swarmState, names map[string]bool) time.Time {
	var earliest time.Time
	tasks := st.tasksByService()
	for i := range st.Services {
		svc := &st.Services[i]
		if !names[svc.Spec.Name] {
			continue
		}
		at := svc.UpdatedAt
		for j := range tasks[svc.ID] {
			if ts := tasks[svc.ID][j].Status.Timestamp; ts.After(at) {
				at = ts
			}
		}
		if !at.IsZero() && (earliest.IsZero() || at.Before(earliest)) {
			earliest = at
		}
	}
	return earliest
}
