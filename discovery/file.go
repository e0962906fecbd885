package discovery

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/swarmgate/swarmgate/internal/opt"
	"github.com/swarmgate/swarmgate/route"
)

// maxRoutesFile bounds the size of a routes file.
const maxRoutesFile = 16 << 20

// routesFile is the --routes file format: services described exactly as Swarm
// would describe them, plus the endpoints Swarm's tasks would provide.
type routesFile struct {
	Services []fileService `yaml:"services"`
}

type fileService struct {
	Name      string            `yaml:"name"`
	Labels    map[string]string `yaml:"labels"`
	Endpoints []string          `yaml:"endpoints"`
}

// ParseRoutesFile is ParseRoutesFileFor with DefaultDialects.
func ParseRoutesFile(data []byte) (route.Config, error) {
	return ParseRoutesFileFor(data, DefaultDialects)
}

// ParseRoutesFileFor parses a routes file, reading the label dialects d. A
// service with bad labels or bad endpoints is skipped and reported in
// Config.Errors; a file that is not valid YAML of the right shape is an
// error that names the line, so that the caller keeps its last table.
func ParseRoutesFileFor(data []byte, d Dialects) (route.Config, error) {
	var f routesFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return route.Config{}, fmt.Errorf("discovery: routes file: %w", shapeError(err))
	}
	lines := serviceLines(data)
	cfg := route.Config{Routes: []route.Route{}}
	seen := make(map[string]int) // name -> line
	for i, s := range f.Services {
		at := ""
		if i < len(lines) {
			at = fmt.Sprintf("line %d: ", lines[i])
		}
		if s.Name == "" {
			return route.Config{}, fmt.Errorf("discovery: routes file: %sservice #%d has no name", at, i+1)
		}
		if prev, ok := seen[s.Name]; ok {
			return route.Config{}, fmt.Errorf("discovery: routes file: %sservice %q is listed twice (first at line %d)", at, s.Name, prev)
		}
		seen[s.Name] = 0
		if i < len(lines) {
			seen[s.Name] = lines[i]
		}
		routes, errs := parseFileService(s, d)
		if len(errs) > 0 {
			cfg.Errors = append(cfg.Errors, errs...)
			continue
		}
		for j := range routes {
			// Earlier in the file counts as older: it wins ties.
			routes[j].CreatedAt = time.Unix(0, 0).Add(time.Duration(i) * time.Second)
		}
		cfg.Routes = append(cfg.Routes, routes...)
	}
	return cfg, nil
}

// shapeNames are the Go types of the file's parts in the decoder's errors,
// and what a user calls them.
var shapeNames = strings.NewReplacer(
	"[]discovery.fileService", "a list of services",
	"discovery.fileService", "a service (fields: name, labels, endpoints)",
	"discovery.routesFile", "a routes file (fields: services)",
	"map[string]string", "a mapping of labels",
	"[]string", "a list of endpoints",
)

// shapeError rewrites the decoder's errors about the file's shape (one per
// line: "line 6: field endpoint not found in type ...") in the file's terms.
func shapeError(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		msgs[i] = shapeNames.Replace(strings.Replace(m, " in type ", " in ", 1))
	}
	return errors.New(strings.Join(msgs, "; "))
}

// serviceLines returns the line of each entry of the file's services list,
// for errors about an entry as a whole (the decoder names the line of the
// errors it finds itself).
func serviceLines(data []byte) []int {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	top := doc.Content[0]
	for i := 0; top.Kind == yaml.MappingNode && i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value != "services" {
			continue
		}
		var lines []int
		for _, n := range top.Content[i+1].Content {
			lines = append(lines, n.Line)
		}
		return lines
	}
	return nil
}

// parseFileService parses the labels of one service of a routes file and
// resolves its endpoints. An endpoint written host:port carries its port, so
// the port label is needed only when a bare host is to take it: when every
// endpoint has a port and the labels set none, the labels are parsed as if
// the service-level port were set, and the routes that would take it get
// port 0 (the endpoints carry it).
func parseFileService(s fileService, d Dialects) ([]route.Route, []*route.LabelError) {
	labels, implied := s.Labels, impliedPortLabel(s)
	if implied != "" {
		labels = maps.Clone(s.Labels)
		labels[implied] = "1" // any valid port: no route keeps it
	}
	routes, errs := ParseLabelsFor(s.Name, labels, d)
	if len(errs) > 0 {
		return nil, errs
	}
	if implied != "" {
		for i := range routes {
			if _, own := s.Labels[namedPrefix+routes[i].Name+"."+keyPort]; routes[i].Name == "" || !own {
				routes[i].Port = 0
			}
		}
	}
	if errs := resolveFileEndpoints(s, routes); len(errs) > 0 {
		return nil, errs
	}
	return routes, nil
}

// impliedPortLabel returns the service-level port label that s's endpoints
// make unnecessary, or "" when the labels set one, an endpoint is a bare
// host, or the service has no route labels at all. It is the Interlock label
// for a service labelled for Interlock only, so that errors name the labels
// the service uses.
func impliedPortLabel(s fileService) string {
	if _, ok := s.Labels[labelPrefix+keyPort]; ok {
		return ""
	}
	if _, ok := s.Labels[interlockPrefix+"port"]; ok {
		return ""
	}
	for _, ep := range s.Endpoints {
		if _, _, err := net.SplitHostPort(ep); err != nil {
			return ""
		}
	}
	own, interlock := false, false
	for k := range s.Labels {
		own = own || strings.HasPrefix(k, labelPrefix)
		interlock = interlock || strings.HasPrefix(k, interlockPrefix)
	}
	switch {
	case own:
		return labelPrefix + keyPort
	case interlock:
		return interlockPrefix + "port"
	}
	return ""
}

// resolveFileEndpoints fills each route's endpoints: "host:port" as written,
// a bare host with the route's port.
func resolveFileEndpoints(s fileService, routes []route.Route) []*route.LabelError {
	var errs []*route.LabelError
	for i := range routes {
		r := &routes[i]
		r.Endpoints = make([]string, 0, len(s.Endpoints))
		for _, ep := range s.Endpoints {
			addr, err := endpointAddr(ep, r.Port)
			if err != nil {
				errs = append(errs, &route.LabelError{Service: s.Name, Label: "endpoints", Value: ep, Reason: err.Error()})
				continue
			}
			r.Endpoints = append(r.Endpoints, addr)
		}
	}
	return errs
}

func endpointAddr(ep string, port int) (string, error) {
	if ep == "" {
		return "", errors.New("empty endpoint")
	}
	host, p, err := net.SplitHostPort(ep)
	if err != nil {
		// A bare host (or IPv6 literal) takes the route's port.
		host = ep
		if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
			host = host[1 : len(host)-1]
		}
		if host == "" || bytes.ContainsAny([]byte(host), "/ ") {
			return "", fmt.Errorf("want host or host:port")
		}
		if port == 0 {
			return "", fmt.Errorf("a bare host takes the route's port, and it has none: write host:port or set the port label")
		}
		return net.JoinHostPort(host, strconv.Itoa(port)), nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || host == "" {
		return "", fmt.Errorf("want host:port with a port from 1 to 65535")
	}
	return ep, nil
}

// FileOptions configure a File source.
type FileOptions struct {
	Path string
	// Interval is how often the file is checked for changes. If zero, 1s.
	// Polling (rather than inotify) sees every kind of replacement: editors'
	// rename-over, Docker configs and Kubernetes' symlink swaps.
	Interval time.Duration
	// Labels are the label dialects read (--labels). If zero,
	// DefaultDialects (swarmgate, interlock).
	Labels Dialects
	// Logger receives reload errors. If nil, nothing is logged.
	Logger *zap.Logger
}

// File is the --routes source: a YAML file of services, watched for changes.
type File struct {
	o    FileOptions
	log  *zap.Logger
	last [sha256.Size]byte
	// rejected is the content last rejected: a broken file is reported once,
	// not on every poll until someone fixes it.
	rejected [sha256.Size]byte
}

// NewFile returns a File source.
func NewFile(o FileOptions) *File {
	opt.Positive(&o.Interval, time.Second)
	l := o.Logger
	if l == nil {
		l = zap.NewNop()
	}
	return &File{o: o, log: l.With(zap.String("source", "file"), zap.String("path", o.Path))}
}

// Name identifies the source in logs.
func (f *File) Name() string { return "file:" + f.o.Path }

// Run loads the file, calls update, and then calls it again whenever the
// file's content changes. The first load's error is returned; later errors are
// logged and the last good Config stays in force.
func (f *File) Run(ctx context.Context, update func(route.Config)) error {
	cfg, _, err := f.load()
	if err != nil {
		return err
	}
	update(cfg)
	tick := time.NewTicker(f.o.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		cfg, changed, err := f.load()
		switch {
		case err != nil:
			f.log.Error("routes file rejected; keeping the last good table", zap.Error(err))
		case changed:
			f.log.Info("routes file changed", zap.Int("routes", len(cfg.Routes)), zap.Int("label_errors", len(cfg.Errors)))
			update(cfg)
		}
	}
}

// load reads and parses the file if its content changed since the last
// successful load.
func (f *File) load() (route.Config, bool, error) {
	fh, err := os.Open(f.o.Path)
	if err != nil {
		return route.Config{}, false, fmt.Errorf("discovery: routes file: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxRoutesFile+1))
	if err != nil {
		return route.Config{}, false, fmt.Errorf("discovery: routes file: %w", err)
	}
	if len(data) > maxRoutesFile {
		return route.Config{}, false, fmt.Errorf("discovery: routes file: larger than %d bytes", maxRoutesFile)
	}
	sum := sha256.Sum256(data)
	if sum == f.last || sum == f.rejected {
		return route.Config{}, false, nil
	}
	cfg, err := ParseRoutesFileFor(data, f.o.Labels)
	if err != nil {
		f.rejected = sum
		return route.Config{}, false, err
	}
	for _, e := range cfg.Errors {
		f.log.Warn("service skipped: invalid labels", zap.String("service", e.Service),
			zap.String("label", e.Label), zap.String("value", e.Value), zap.String("reason", e.Reason))
	}
	f.last = sum
	return cfg, true, nil
}
