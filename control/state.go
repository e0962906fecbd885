// Package control is the control plane's stream: a Server holds the desired
// route.Config that one watcher of the Swarm produces and streams it to edges
// as versioned snapshots and per-route deltas over HTTP/2. A Client is the
// edge's route.Source for that stream: it resumes from its version after a
// reconnection or a failover, and keeps the last Config in force meanwhile.
package control

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/swarmgate/swarmgate/route"
)

// A state is a set of items, each the canonical JSON of one part of a
// Config under a key:
//
//	r:<route ID>   the route without its endpoints (wireRoute)
//	e:<route ID>   its endpoints, when it has any (a JSON array of "host:port")
//	x:<service>    the label errors of a skipped service (wireLabelError list)
//
// Endpoints are items of their own because they are what changes most:
// a task that starts costs the edge one short item, not its route again.
// The version of a state is a hash of its items, so two replicas that hold
// the same Config hold the same version, whatever path led them there.
const (
	keyRoute     = "r:"
	keyEndpoints = "e:"
	keyErrors    = "x:"
)

// item is one part of a state: its canonical encoding and the hash of key
// and encoding that the version is computed from.
type item struct {
	raw []byte
	sum itemSum
}

// itemSum is the hash of an item's key and encoding.
type itemSum = [sha256.Size]byte

func newItem(key string, raw []byte) item {
	return item{raw: raw, sum: sumItem(key, raw)}
}

func sumItem(key string, raw []byte) itemSum {
	h := sha256.New()
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write(raw)
	var s [sha256.Size]byte
	h.Sum(s[:0])
	return s
}

// versionLen is the length of a version in hex digits (128 bits).
const versionLen = 32

// versionOf returns the version of a state: the first 128 bits of a SHA-256
// over its item hashes in key order, in hex.
func versionOf(keys []string, sum func(key string) [sha256.Size]byte) string {
	return versionOfSums(len(keys), func(i int) [sha256.Size]byte { return sum(keys[i]) })
}

// versionOfSums is versionOf over the n item hashes sum returns, in key
// order: for a state that keeps them in order without their map.
func versionOfSums(n int, sum func(i int) [sha256.Size]byte) string {
	h := sha256.New()
	for i := range n {
		s := sum(i)
		h.Write(s[:])
	}
	return hex.EncodeToString(h.Sum(nil)[:versionLen/2])
}

// validVersion reports whether v could be a version (or is empty).
func validVersion(v string) bool {
	if v == "" {
		return true
	}
	if len(v) != versionLen {
		return false
	}
	_, err := hex.DecodeString(v)
	return err == nil
}

// wireRoute is a route.Route as the stream carries it: every field of the
// route model but the endpoints, with short names, zero values left out.
// Nothing else of a service (spec, environment, secrets, other labels)
// exists here to be sent. TestWireRouteCoversTheModel fails when a field
// is added to route.Route and not here.
type wireRoute struct {
	Service        string         `json:"svc"`
	ServiceID      string         `json:"sid,omitempty"`
	Name           string         `json:"name,omitempty"`
	CreatedAt      time.Time      `json:"created,omitzero"`
	Hosts          []string       `json:"hosts,omitempty"`
	Path           string         `json:"path,omitempty"`
	Exact          bool           `json:"exact,omitempty"`
	Strip          bool           `json:"strip,omitempty"`
	Priority       int            `json:"prio,omitempty"`
	Weight         int            `json:"weight,omitempty"`
	Default        bool           `json:"default,omitempty"`
	Port           int            `json:"port,omitempty"`
	Backend        string         `json:"backend,omitempty"`
	Network        string         `json:"net,omitempty"`
	Balancer       string         `json:"bal,omitempty"`
	Sticky         string         `json:"sticky,omitempty"`
	TLS            string         `json:"tls,omitempty"`
	TLSRedirect    bool           `json:"tls_redirect,omitempty"`
	HSTS           string         `json:"hsts,omitempty"`
	BackendTLS     string         `json:"btls,omitempty"`
	H2C            bool           `json:"h2c,omitempty"`
	HealthPath     string         `json:"hpath,omitempty"`
	HealthInterval time.Duration  `json:"hint,omitempty"`
	Timeout        time.Duration  `json:"timeout,omitempty"`
	StreamBody     bool           `json:"stream,omitempty"`
	Redirects      []wireRedirect `json:"redir,omitempty"`
	Cluster        string         `json:"cluster,omitempty"`
	TCPPort        int            `json:"tcp,omitempty"`
	SNI            []string       `json:"sni,omitempty"`
	ProxyProtocol  int            `json:"pp,omitempty"`
	Policy         *route.Policy  `json:"pol,omitempty"`
	// Users are Policy.BasicUsers with their hashes, which no JSON form
	// of a route.Policy carries (route.Secret): the edge needs them.
	Users []wireUser `json:"users,omitempty"`
}

type wireUser struct {
	Name string `json:"name"`
	Hash string `json:"hash"`
}

type wireRedirect struct {
	From string `json:"from"`
	To   string `json:"to"`
	Code int    `json:"code"`
}

// wireLabelError is a route.LabelError without its service (the key says it).
type wireLabelError struct {
	Label  string `json:"label"`
	Value  string `json:"value"`
	Reason string `json:"reason"`
}

func toWire(r *route.Route) wireRoute {
	w := wireRoute{
		Service: r.Service, ServiceID: r.ServiceID, Name: r.Name,
		Hosts: r.Hosts, Path: r.Path, Exact: r.Exact, Strip: r.Strip, Priority: r.Priority, Weight: r.Weight, Default: r.Default,
		Port: r.Port, Backend: r.Backend, Network: r.Network, Balancer: r.Balancer, Sticky: r.Sticky,
		TLS: r.TLS, TLSRedirect: r.TLSRedirect, HSTS: r.HSTS, BackendTLS: r.BackendTLS, H2C: r.H2C, StreamBody: r.StreamBody,
		HealthPath: r.HealthPath, HealthInterval: r.HealthInterval, Timeout: r.Timeout,
		Cluster: r.Cluster, TCPPort: r.TCPPort, SNI: r.SNI, ProxyProtocol: r.ProxyProtocol, Policy: r.Policy,
	}
	if r.Policy != nil {
		for _, u := range r.Policy.BasicUsers {
			w.Users = append(w.Users, wireUser{u.Name, string(u.Hash)})
		}
	}
	if !r.CreatedAt.IsZero() {
		// One instant, one encoding: replicas must agree byte for byte.
		w.CreatedAt = r.CreatedAt.UTC()
	}
	for _, rd := range r.Redirects {
		w.Redirects = append(w.Redirects, wireRedirect(rd))
	}
	return w
}

func fromWire(w *wireRoute) route.Route {
	r := route.Route{
		Service: w.Service, ServiceID: w.ServiceID, Name: w.Name, CreatedAt: w.CreatedAt,
		Hosts: w.Hosts, Path: w.Path, Exact: w.Exact, Strip: w.Strip, Priority: w.Priority, Weight: w.Weight, Default: w.Default,
		Port: w.Port, Backend: w.Backend, Network: w.Network, Balancer: w.Balancer, Sticky: w.Sticky,
		TLS: w.TLS, TLSRedirect: w.TLSRedirect, HSTS: w.HSTS, BackendTLS: w.BackendTLS, H2C: w.H2C, StreamBody: w.StreamBody,
		HealthPath: w.HealthPath, HealthInterval: w.HealthInterval, Timeout: w.Timeout,
		Cluster: w.Cluster, TCPPort: w.TCPPort, SNI: w.SNI, ProxyProtocol: w.ProxyProtocol, Policy: w.Policy,
	}
	for _, rd := range w.Redirects {
		r.Redirects = append(r.Redirects, route.Redirect(rd))
	}
	if r.Policy != nil && len(w.Users) > 0 {
		r.Policy.BasicUsers = make([]route.BasicUser, len(w.Users)) // the policy is w's own, just decoded
		for i, u := range w.Users {
			r.Policy.BasicUsers[i] = route.BasicUser{Name: u.Name, Hash: route.Secret(u.Hash)}
		}
	}
	return r
}

// encodeConfig returns the items of a Config by key. Two routes with the
// same ID (a source bug) both travel, the second under "ID#2".
func encodeConfig(cfg route.Config) (map[string][]byte, error) {
	changes, _, err := new(encoder).diff(cfg)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(changes))
	for _, c := range changes {
		out[c.key] = c.raw
	}
	return out, nil
}

// encoder encodes Configs, one after another, and says which items differ
// from the Config before: a route or endpoint list that is as it was keeps
// its encoding, so a change to one service costs its items, not 20,000 JSON
// encodings or maps rebuilt. It is not safe for concurrent use.
type encoder struct {
	// valid is set when routes and errors hold the items of the last
	// Config encoded; after an error they are dropped and the next diff
	// reports the whole state.
	valid  bool
	gen    uint64                    // the count of diffs: marks what the current one met
	routes map[string]*encodedRoute  // by route ID (with its "#N" when a duplicate)
	errors map[string]*encodedErrors // by service
}

type encodedRoute struct {
	gen    uint64
	route  route.Route // as it was encoded, endpoints included
	raw    []byte      // the route without its endpoints
	epsRaw []byte      // its endpoints; nil when it has none (no item)
}

type encodedErrors struct {
	gen  uint64
	list []wireLabelError
	raw  []byte
}

// itemChange is an item that differs from the Config before: its new
// encoding, or nil when it is gone.
type itemChange struct {
	key string
	raw []byte
}

// diff encodes cfg and returns the items that differ from the Config the
// last diff encoded, sorted by key. complete is set when there was no such
// Config (the first diff, or one after an error): changes then holds every
// item of cfg and no deletion, and whatever item the caller holds that is
// not in it is gone.
func (e *encoder) diff(cfg route.Config) (changes []itemChange, complete bool, err error) {
	if !e.valid {
		e.routes, e.errors = map[string]*encodedRoute{}, map[string]*encodedErrors{}
		complete = true
	}
	e.valid = false // until this diff is through
	e.gen++
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		id := r.ID()
		enc := e.routes[id]
		for n := 2; enc != nil && enc.gen == e.gen; n++ {
			id = r.ID() + "#" + strconv.Itoa(n)
			enc = e.routes[id]
		}
		fresh := enc == nil
		if fresh {
			enc = &encodedRoute{}
			e.routes[id] = enc
		}
		enc.gen = e.gen
		if !fresh && route.Same(&enc.route, r) { // as it was: most routes, no copy
			if complete {
				changes = append(changes, itemChange{keyRoute + id, enc.raw})
				if enc.epsRaw != nil {
					changes = append(changes, itemChange{keyEndpoints + id, enc.epsRaw})
				}
			}
			continue
		}
		was, bare := enc.route, *r
		was.Endpoints, bare.Endpoints = nil, nil
		if fresh || !route.Same(&was, &bare) {
			raw, err := json.Marshal(toWire(r))
			if err != nil {
				return nil, false, fmt.Errorf("control: encode route %s: %w", id, err)
			}
			enc.raw = raw
			changes = append(changes, itemChange{keyRoute + id, raw})
		} else if complete {
			changes = append(changes, itemChange{keyRoute + id, enc.raw})
		}
		switch {
		case len(r.Endpoints) > 0 && (enc.epsRaw == nil || !slices.Equal(enc.route.Endpoints, r.Endpoints)):
			raw, err := json.Marshal(r.Endpoints)
			if err != nil {
				return nil, false, fmt.Errorf("control: encode endpoints of %s: %w", id, err)
			}
			enc.epsRaw = raw
			changes = append(changes, itemChange{keyEndpoints + id, raw})
		case len(r.Endpoints) > 0 && complete:
			changes = append(changes, itemChange{keyEndpoints + id, enc.epsRaw})
		case len(r.Endpoints) == 0 && enc.epsRaw != nil:
			enc.epsRaw = nil
			changes = append(changes, itemChange{keyEndpoints + id, nil})
		}
		enc.route = *r
	}
	if len(e.routes) > len(cfg.Routes) { // routes gone since the last Config
		for id, enc := range e.routes {
			if enc.gen == e.gen {
				continue
			}
			changes = append(changes, itemChange{keyRoute + id, nil})
			if enc.epsRaw != nil {
				changes = append(changes, itemChange{keyEndpoints + id, nil})
			}
			delete(e.routes, id)
		}
	}

	var errs map[string][]wireLabelError
	for _, le := range cfg.Errors {
		if le == nil {
			continue
		}
		if errs == nil {
			errs = map[string][]wireLabelError{}
		}
		errs[le.Service] = append(errs[le.Service], wireLabelError{Label: le.Label, Value: le.Value, Reason: le.Reason})
	}
	for svc, list := range errs {
		// A parser that reports a service's errors in label-map order
		// must not make two replicas disagree on the version.
		slices.SortFunc(list, func(a, b wireLabelError) int {
			return cmp.Or(strings.Compare(a.Label, b.Label), strings.Compare(a.Value, b.Value), strings.Compare(a.Reason, b.Reason))
		})
		enc := e.errors[svc]
		if enc == nil || !slices.Equal(enc.list, list) {
			raw, err := json.Marshal(list)
			if err != nil {
				return nil, false, fmt.Errorf("control: encode label errors of %s: %w", svc, err)
			}
			enc = &encodedErrors{list: list, raw: raw}
			e.errors[svc] = enc
			changes = append(changes, itemChange{keyErrors + svc, raw})
		} else if complete {
			changes = append(changes, itemChange{keyErrors + svc, enc.raw})
		}
		enc.gen = e.gen
	}
	if len(e.errors) > len(errs) {
		for svc, enc := range e.errors {
			if enc.gen != e.gen {
				changes = append(changes, itemChange{keyErrors + svc, nil})
				delete(e.errors, svc)
			}
		}
	}
	slices.SortFunc(changes, func(a, b itemChange) int { return strings.Compare(a.key, b.key) })
	e.valid = true
	return changes, complete, nil
}

// decoded is one item as the client keeps it: its hash and its value.
type decoded struct {
	sum       [sha256.Size]byte
	route     *route.Route
	endpoints []string
	errors    []*route.LabelError
}

// decodeItem parses one item of the stream.
func decodeItem(key string, raw []byte) (decoded, error) {
	d := decoded{sum: sumItem(key, raw)}
	var err error
	switch {
	case strings.HasPrefix(key, keyRoute):
		var w wireRoute
		if err = strictUnmarshal(raw, &w); err == nil {
			r := fromWire(&w)
			d.route = &r
		}
	case strings.HasPrefix(key, keyEndpoints):
		err = strictUnmarshal(raw, &d.endpoints)
	case strings.HasPrefix(key, keyErrors):
		var list []wireLabelError
		if err = strictUnmarshal(raw, &list); err == nil {
			svc := strings.TrimPrefix(key, keyErrors)
			for _, e := range list {
				d.errors = append(d.errors, &route.LabelError{Service: svc, Label: e.Label, Value: e.Value, Reason: e.Reason})
			}
		}
	default:
		err = fmt.Errorf("unknown kind of key")
	}
	if err != nil {
		return decoded{}, fmt.Errorf("control: item %q: %w", key, err)
	}
	return d, nil
}

// strictUnmarshal refuses fields the route model does not have: a newer
// control plane must not be half understood.
func strictUnmarshal(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// buildConfig assembles the Config of a client's state: routes and label
// errors in the order of keys, the state's keys sorted (route ID, service
// name). It costs a copy of each route's struct, no sort and no slice.
func buildConfig(items map[string]decoded, keys []string, changed time.Time) route.Config {
	cfg := route.Config{Routes: make([]route.Route, 0, len(items)/2), Changed: changed}
	for _, k := range keys {
		d := items[k]
		switch {
		case d.route != nil:
			// The decoded item is never modified (a change decodes a new
			// one), so the Config shares its slices rather than copy them:
			// Configs are read-only (route.Source).
			r := *d.route
			r.Endpoints = items[keyEndpoints+k[len(keyRoute):]].endpoints
			cfg.Routes = append(cfg.Routes, r)
		case d.errors != nil:
			cfg.Errors = append(cfg.Errors, d.errors...)
		}
	}
	return cfg
}
