package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/swarmgate/swarmgate/discovery"
	"github.com/swarmgate/swarmgate/policy"
	"github.com/swarmgate/swarmgate/route"
)

// maxStackFile bounds what check reads from one file (or stdin).
const maxStackFile = 16 << 20

// checkOptions are the flags of `swarmgate check`.
type checkOptions struct {
	docker  bool
	network string
	stack   string
	output  string
	timeout time.Duration
	labels  discovery.Dialects
}

func newCheckCmd(logs *logOptions) *cobra.Command {
	var o checkOptions
	cmd := &cobra.Command{
		Use:   "check [FILE...] | check --docker [HOST]",
		Short: "Validate routing labels of stack files, routes files or live services and print the routes they produce",
		Long: `Validate the swarmgate.* and com.docker.lb.* labels (and traefik.*, with
--labels swarmgate,interlock,traefik) of compose/stack files
(deploy.labels), of routes files (the edge's --routes format) or, with
--docker, of the services running in a Swarm, and print the routes an edge
would build from them, every label error and every warning. A file is read as
a stack file or a routes file by its content ("services:" a mapping or a
list), whatever its name; "-" reads standard input. The exit status is 1 if
any label is invalid.

With --docker, HOST is the Docker Engine API (unix:///var/run/docker.sock,
tcp://socket-proxy:2375); without it the DOCKER_HOST conventions apply. Live
services are resolved as the edge would: networks (--network is the edge's)
and task endpoints.`,
		Example: `  swarmgate check stack.yml
  swarmgate check --labels swarmgate,interlock,traefik traefik-stack.yml
  swarmgate check routes.yaml
  docker compose config | swarmgate check -
  swarmgate check --docker
  swarmgate check --docker --stack shop
  swarmgate check --docker tcp://socket-proxy:2375 --network edge --output json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.output != "table" && o.output != "json" {
				return fmt.Errorf("check: --output: want table or json, got %q", o.output)
			}
			var rep checkReport
			var err error
			if o.stack != "" && !o.docker {
				return fmt.Errorf("check: --stack needs --docker")
			}
			if o.docker {
				if len(args) > 1 {
					return fmt.Errorf("check: --docker takes at most one HOST, got %d arguments", len(args))
				}
				host := ""
				if len(args) == 1 {
					host = args[0]
				}
				rep, err = checkDocker(cmd.Context(), logs, host, o)
			} else {
				if len(args) == 0 {
					return fmt.Errorf("check: give stack files or routes files (or - for standard input), or --docker")
				}
				rep, err = checkFiles(cmd.InOrStdin(), args, o.labels)
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if o.output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				err = enc.Encode(rep)
			} else {
				err = rep.print(out)
			}
			if err != nil {
				return fmt.Errorf("check: %w", err)
			}
			if n := len(rep.Errors); n > 0 {
				return fmt.Errorf("check: %d invalid label(s) in %d service(s)", n, rep.erroredServices())
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.docker, "docker", false, "check the live services of the Docker Engine API at HOST (default: DOCKER_HOST conventions)")
	f.StringVar(&o.network, "network", "", "with --docker: the overlay network the edge shares with services")
	f.StringVar(&o.stack, "stack", "", "with --docker: only the services of this stack (named STACK_*)")
	f.StringVarP(&o.output, "output", "o", "table", "table or json")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "with --docker: how long the listing may take")
	labelsFlag(f, &o.labels)
	return cmd
}

// checkReport is what check prints; its JSON form is for machines.
type checkReport struct {
	Routes   []checkRoute   `json:"routes"`
	Errors   []checkError   `json:"errors"`
	Warnings []checkWarning `json:"warnings"`
	// endpoints is set when the routes have known endpoints (live services,
	// routes files): the table shows them.
	endpoints bool
}

type checkRoute struct {
	Source    string   `json:"source,omitempty"` // file name; empty for --docker
	Service   string   `json:"service"`
	Route     string   `json:"route"` // "service" or "service/name"
	Hosts     []string `json:"hosts,omitempty"`
	Default   bool     `json:"default,omitempty"`
	TCPPort   int      `json:"tcp_port,omitempty"`
	SNI       []string `json:"sni,omitempty"`
	Path      string   `json:"path"`
	Exact     bool     `json:"exact,omitempty"` // Path matches only itself
	Strip     bool     `json:"strip,omitempty"`
	Priority  int      `json:"priority,omitempty"`
	Weight    int      `json:"weight"`
	Port      int      `json:"port"`
	Backend   string   `json:"backend"`
	Network   string   `json:"network,omitempty"`
	Balancer  string   `json:"balancer"`
	TLS       string   `json:"tls"`
	Cluster   string   `json:"cluster,omitempty"`
	Policies  []string `json:"policies,omitempty"` // the policy labels in force, by key
	Endpoints []string `json:"endpoints,omitempty"`
	// resolved is set when Endpoints are known (live services, routes
	// files), not left to Swarm (stack files).
	resolved bool
}

type checkError struct {
	Source  string `json:"source,omitempty"`
	Line    int    `json:"line,omitempty"` // of the label in the file, or of the service when the label is missing
	Service string `json:"service"`
	Label   string `json:"label"`
	Value   string `json:"value"`
	Reason  string `json:"reason"`
}

type checkWarning struct {
	Source  string `json:"source,omitempty"`
	Line    int    `json:"line,omitempty"` // of the service in the file
	Service string `json:"service"`
	Message string `json:"message"`
}

// checkFiles parses every file, a stack file or a routes file as its
// content says (fileKind); "-" is r.
func checkFiles(r io.Reader, files []string, labels discovery.Dialects) (checkReport, error) {
	rep := checkReport{Routes: []checkRoute{}, Errors: []checkError{}, Warnings: []checkWarning{}}
	for _, name := range files {
		data, err := readStackFile(r, name)
		if err != nil {
			return rep, err
		}
		nerr, nwarn := len(rep.Errors), len(rep.Warnings)
		kind, err := rep.checkFile(name, data, labels)
		if err != nil {
			return rep, fmt.Errorf("check: %s: %w", name, err)
		}
		lines := fileLines(data, kind)
		for i := nerr; i < len(rep.Errors); i++ {
			rep.Errors[i].Line = lines.of(rep.Errors[i].Service, rep.Errors[i].Label)
		}
		for i := nwarn; i < len(rep.Warnings); i++ {
			rep.Warnings[i].Line = lines.of(rep.Warnings[i].Service, "")
		}
	}
	return rep, nil
}

// checkFile adds the routes, errors and warnings of one file to rep and
// returns its kind.
func (rep *checkReport) checkFile(name string, data []byte, labels discovery.Dialects) (string, error) {
	kind, err := fileKind(data)
	if err != nil {
		return "", err
	}
	if kind == routesFile {
		cfg, err := discovery.ParseRoutesFileFor(data, labels)
		if err != nil {
			return "", err
		}
		rep.add(name, cfg, true)
		rep.endpoints = true
		return kind, nil
	}
	services, err := discovery.ParseStack(data)
	if err != nil {
		return "", err
	}
	for _, s := range services {
		routes, errs := discovery.ParseLabelsFor(s.Name, s.Labels, labels)
		rep.add(name, route.Config{Routes: routes, Errors: errs}, false)
		for _, w := range s.Warnings {
			rep.Warnings = append(rep.Warnings, checkWarning{Source: name, Service: s.Name, Message: w})
		}
	}
	return kind, nil
}

// labelLines are the lines of a file's services and of their labels:
// [service][label], and [service][""] for the service itself.
type labelLines map[string]map[string]int

// of returns the line of a service's label, or of the service when the file
// does not set the label (an error about a missing one); 0 if unknown.
func (l labelLines) of(service, label string) int {
	if n := l[service][label]; n > 0 {
		return n
	}
	return l[service][""]
}

// fileLines finds the services of a file of the kind and the lines of their
// labels: in a stack file deploy.labels (map or list form, anchors and
// merge keys followed), in a routes file labels and endpoints. It is
// best-effort: what it cannot find has no line.
func fileLines(data []byte, kind string) labelLines {
	out := labelLines{}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return out
	}
	services := mapValue(doc.Content[0], "services")
	if services == nil {
		return out
	}
	add := func(service string, line int) map[string]int {
		m := map[string]int{"": line}
		out[service] = m
		return m
	}
	if kind == routesFile {
		for _, s := range services.Content {
			name := mapValue(s, "name")
			if name == nil {
				continue
			}
			m := add(name.Value, s.Line)
			labelNodeLines(mapValue(s, "labels"), m)
			if ep := mapKey(s, "endpoints"); ep != nil {
				m["endpoints"] = ep.Line
			}
		}
		return out
	}
	for i := 0; services.Kind == yaml.MappingNode && i+1 < len(services.Content); i += 2 {
		m := add(services.Content[i].Value, services.Content[i].Line)
		labelNodeLines(mapValue(mapValue(services.Content[i+1], "deploy"), "labels"), m)
	}
	return out
}

// labelNodeLines records the line of each label of a label block.
func labelNodeLines(n *yaml.Node, lines map[string]int) {
	n = alias(n)
	if n == nil {
		return
	}
	switch n.Kind {
	case yaml.SequenceNode:
		for _, item := range n.Content {
			k, _, _ := strings.Cut(alias(item).Value, "=")
			lines[k] = item.Line
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], alias(n.Content[i+1])
			if k.Value == "<<" && k.Tag == "!!merge" {
				merged := []*yaml.Node{v}
				if v.Kind == yaml.SequenceNode {
					merged = v.Content
				}
				for _, m := range merged {
					own := map[string]int{}
					labelNodeLines(m, own)
					for label, line := range own {
						if _, set := lines[label]; !set {
							lines[label] = line
						}
					}
				}
				continue
			}
			lines[k.Value] = k.Line
		}
	}
}

// mapKey returns the key node of key in mapping n, or nil.
func mapKey(n *yaml.Node, key string) *yaml.Node {
	n = alias(n)
	for i := 0; n != nil && n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i]
		}
	}
	return nil
}

// mapValue returns the value node of key in mapping n, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	n = alias(n)
	for i := 0; n != nil && n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return alias(n.Content[i+1])
		}
	}
	return nil
}

// alias follows an alias node (a bounded number of times).
func alias(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

// The kinds of file check reads.
const (
	stackFile  = "stack file"  // compose: services is a mapping of name to service
	routesFile = "routes file" // --routes: services is a list of {name, labels, endpoints}
)

// fileKind tells a stack file from a routes file by its content, whatever
// its name: both have a top-level services key, a mapping in a stack file
// and a list in a routes file. A file without services (empty, or a
// compose file of networks only) is a stack file of no services.
func fileKind(data []byte) (string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return "", fmt.Errorf("not YAML: %w", err)
	}
	if len(doc.Content) == 0 {
		return stackFile, nil
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return "", fmt.Errorf("line %d: want a stack file or a routes file, a mapping with a services key", top.Line)
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value != "services" {
			continue
		}
		switch v := top.Content[i+1]; {
		case v.Kind == yaml.SequenceNode:
			return routesFile, nil
		case v.Kind == yaml.MappingNode || v.Kind == yaml.ScalarNode && v.Tag == "!!null":
			return stackFile, nil
		default:
			return "", fmt.Errorf("line %d: services: want a mapping of services (a stack file) or a list of services (a routes file)", v.Line)
		}
	}
	return stackFile, nil
}

func readStackFile(stdin io.Reader, name string) ([]byte, error) {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxStackFile+1))
	if err != nil {
		return nil, fmt.Errorf("check: %s: %w", name, err)
	}
	if len(data) > maxStackFile {
		return nil, fmt.Errorf("check: %s: larger than %d bytes", name, maxStackFile)
	}
	return data, nil
}

// checkDocker lists the live services once.
func checkDocker(ctx context.Context, logs *logOptions, host string, o checkOptions) (checkReport, error) {
	log, err := newLogger(logs)
	if err != nil {
		return checkReport{}, err
	}
	defer log.Sync()
	s, err := discovery.NewSwarm(discovery.SwarmOptions{Host: host, Network: o.network, Labels: o.labels, Logger: log})
	if err != nil {
		return checkReport{}, fmt.Errorf("check: %w", err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	cfg, err := s.Snapshot(ctx)
	if err != nil {
		return checkReport{}, fmt.Errorf("check: %w", err)
	}
	rep := checkReport{Routes: []checkRoute{}, Errors: []checkError{}, Warnings: []checkWarning{}, endpoints: true}
	rep.add("", stackOnly(cfg, o.stack), true)
	return rep, nil
}

// stackOnly keeps the routes and errors of the services of stack, the ones
// `docker stack deploy` names stack_*; all of them if stack is "".
func stackOnly(cfg route.Config, stack string) route.Config {
	if stack == "" {
		return cfg
	}
	in := func(service string) bool { return strings.HasPrefix(service, stack+"_") }
	out := route.Config{}
	for _, r := range cfg.Routes {
		if in(r.Service) {
			out.Routes = append(out.Routes, r)
		}
	}
	for _, e := range cfg.Errors {
		if in(e.Service) {
			out.Errors = append(out.Errors, e)
		}
	}
	return out
}

// add reports cfg's routes and errors; resolved says that the routes'
// endpoints are known.
func (rep *checkReport) add(source string, cfg route.Config, resolved bool) {
	for _, r := range cfg.Routes {
		rep.Routes = append(rep.Routes, checkRoute{
			Source: source, Service: r.Service, Route: r.ID(),
			Hosts: r.Hosts, Default: r.Default, TCPPort: r.TCPPort, SNI: r.SNI,
			Path: r.Path, Exact: r.Exact, Strip: r.Strip, Priority: r.Priority, Weight: r.Weight,
			Port: r.Port, Backend: r.Backend, Network: r.Network, Balancer: r.Balancer,
			TLS: r.TLS, Cluster: r.Cluster, Policies: policyNames(r.Policy), Endpoints: r.Endpoints,
			resolved: resolved,
		})
		rep.weakHashes(source, &r)
	}
	for _, e := range cfg.Errors {
		rep.Errors = append(rep.Errors, checkError{Source: source, Service: e.Service, Label: e.Label, Value: e.Value, Reason: e.Reason})
	}
}

// weakHashes warns of the inline basic-auth users of r whose hashes are
// MD5 or SHA-1: served, as Traefik serves them, but cheap to brute-force.
func (rep *checkReport) weakHashes(source string, r *route.Route) {
	if r.Policy == nil {
		return
	}
	for _, u := range r.Policy.BasicUsers {
		if why := policy.WeakHash(u); why != "" {
			rep.Warnings = append(rep.Warnings, checkWarning{Source: source, Service: r.Service,
				Message: fmt.Sprintf("route %s: basic-auth user %q: %s; prefer bcrypt (htpasswd -nB %s)", r.ID(), u.Name, why, u.Name)})
		}
	}
}

func (rep *checkReport) erroredServices() int {
	seen := map[string]bool{}
	for _, e := range rep.Errors {
		seen[e.Source+"\x00"+e.Service] = true
	}
	return len(seen)
}

// print writes the human-readable report: a table of routes, then errors and
// warnings, one per line.
func (rep *checkReport) print(w io.Writer) error {
	multi := false
	for _, r := range rep.Routes {
		multi = multi || r.Source != rep.Routes[0].Source
	}
	cluster, policies := false, false
	for _, r := range rep.Routes {
		cluster = cluster || r.Cluster != ""
		policies = policies || len(r.Policies) > 0
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	cols := []string{"SERVICE", "ROUTE", "HOSTS/PORTS", "PATH", "WEIGHT", "BACKEND", "TLS"}
	if cluster {
		cols = append(cols, "CLUSTER")
	}
	if policies {
		cols = append(cols, "POLICIES")
	}
	if rep.endpoints {
		cols = append(cols, "ENDPOINTS")
	}
	if multi {
		cols = append([]string{"FILE"}, cols...)
	}
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	for _, r := range rep.Routes {
		row := []string{r.Service, r.Route, r.listens(), r.path(), strconv.Itoa(r.Weight), r.backend(), r.TLS}
		if cluster {
			row = append(row, dash(r.Cluster))
		}
		if policies {
			row = append(row, dash(strings.Join(r.Policies, ",")))
		}
		if rep.endpoints {
			row = append(row, r.endpoints())
		}
		if multi {
			row = append([]string{r.Source}, row...)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d route(s), %d error(s), %d warning(s)\n", len(rep.Routes), len(rep.Errors), len(rep.Warnings))
	for _, e := range rep.Errors {
		fmt.Fprintf(w, "error: %sservice %q: label %s=%q: %s\n", prefix(e.Source), e.Service, e.Label, e.Value, e.Reason)
	}
	for _, wn := range rep.Warnings {
		fmt.Fprintf(w, "warning: %sservice %q: %s\n", prefix(wn.Source), wn.Service, wn.Message)
	}
	return nil
}

// policyNames lists the policies of p that are on, by their label key (a
// rate limit with its value): what check shows of a route's policies.
func policyNames(p *route.Policy) []string {
	if p == nil {
		return nil
	}
	var out []string
	on := func(set bool, name string) {
		if set {
			out = append(out, name)
		}
	}
	on(len(p.Allow) > 0, "allow")
	on(len(p.Deny) > 0, "deny")
	on(p.BasicAuth != "", "auth.basic")
	if len(p.BasicUsers) > 0 {
		names := make([]string, len(p.BasicUsers))
		for i, u := range p.BasicUsers {
			names[i] = u.Name // never the hash
		}
		out = append(out, "auth.users("+strings.Join(names, " ")+")")
	}
	on(p.ForwardAuth != "", "auth.forward")
	if p.RateLimit.N > 0 {
		out = append(out, "ratelimit="+p.RateLimit.String())
	}
	on(p.BodyMax > 0, "body.max")
	on(len(p.RequestHeaders) > 0, "headers.request")
	on(len(p.ResponseHeaders) > 0, "headers.response")
	on(len(p.CORS.Origins) > 0, "cors")
	on(len(p.Compress) > 0, "compress")
	on(p.MatchHeader.Name != "", "match.header")
	on(p.MatchCookie.Name != "", "match.cookie")
	on(p.ErrorPage != "", "errors.page")
	return out
}

// listens says what the route answers: host names, the default backend, a
// TCP port or TLS server names.
func (r checkRoute) listens() string {
	var parts []string
	if len(r.Hosts) > 0 {
		parts = append(parts, strings.Join(r.Hosts, ","))
	}
	if r.Default {
		parts = append(parts, "(default)")
	}
	if r.TCPPort != 0 {
		parts = append(parts, "tcp:"+strconv.Itoa(r.TCPPort))
	}
	if len(r.SNI) > 0 {
		parts = append(parts, "sni:"+strings.Join(r.SNI, ","))
	}
	return dash(strings.Join(parts, " "))
}

// path is the route's path: the prefix, or "= /x" for an exact path (as
// NGINX writes location = /x), and "(strip)" when it is stripped.
func (r checkRoute) path() string {
	if len(r.Hosts) == 0 && !r.Default {
		return "-" // pure L4
	}
	p := r.Path
	if r.Exact {
		p = "= " + p
	}
	if r.Strip {
		p += " (strip)"
	}
	return p
}

func (r checkRoute) backend() string {
	s := r.Backend
	if r.Port != 0 { // 0: a routes file's endpoints carry their ports
		s += " :" + strconv.Itoa(r.Port)
	}
	if r.Network != "" {
		s += " @" + r.Network
	}
	return s
}

// endpoints lists the route's endpoints: "none (503)" when it has none, "-"
// when they are Swarm's to say (a stack file's route).
func (r checkRoute) endpoints() string {
	switch {
	case !r.resolved:
		return "-"
	case len(r.Endpoints) == 0:
		return "none (503)"
	}
	return strings.Join(r.Endpoints, ",")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func prefix(source string) string {
	if source == "" {
		return ""
	}
	return source + ": "
}
