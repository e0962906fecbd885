package discovery

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
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

// ParseRoutesFile parses a routes file. A service with bad labels or bad
// endpoints is skipped and reported in Config.Errors; a file that is not valid
// YAML of the right shape is an error, so that the caller keeps its last table.
func ParseRoutesFile(data []byte) (route.Config, error) {
	var f routesFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return route.Config{}, fmt.Errorf("discovery: routes file: %w", err)
	}
	cfg := route.Config{Routes: []route.Route{}}
	seen := make(map[string]bool)
	for i, s := range f.Services {
		if s.Name == "" {
			return route.Config{}, fmt.Errorf("discovery: routes file: service #%d has no name", i+1)
		}
		if seen[s.Name] {
			return route.Config{}, fmt.Errorf("discovery: routes file: service %q is listed twice", s.Name)
		}
		seen[s.Name] = true
		routes, errs := ParseLabels(s.Name, s.Labels)
		if len(errs) == 0 {
			errs = resolveFileEndpoints(s, routes)
		}
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
	// Logger receives reload errors. If nil, nothing is logged.
	Logger *zap.Logger
}

// File is the --routes source: a YAML file of services, watched for changes.
type File struct {
	o    FileOptions
	log  *zap.Logger
	last [sha256.Size]byte
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
	if sum == f.last {
		return route.Config{}, false, nil
	}
	cfg, err := ParseRoutesFile(data)
	if err != nil {
		return route.Config{}, false, err
	}
	for _, e := range cfg.Errors {
		f.log.Warn("service skipped: invalid labels", zap.String("service", e.Service),
			zap.String("label", e.Label), zap.String("value", e.Value), zap.String("reason", e.Reason))
	}
	f.last = sum
	return cfg, true, nil
}
