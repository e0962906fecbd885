package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmgate/swarmgate/edge"
	"github.com/swarmgate/swarmgate/proxy"
	"github.com/swarmgate/swarmgate/route"
)

func newRoutesCmd() *cobra.Command {
	var admin, output string
	cmd := &cobra.Command{
		Use:   "routes",
		Short: "Print a running edge's routing table (from its admin API)",
		Example: `  swarmgate routes --admin http://127.0.0.1:8080
  swarmgate routes --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			v, raw, err := fetchRoutes(ctx, admin)
			if err != nil {
				return err
			}
			if output == "json" {
				_, err := cmd.OutOrStdout().Write(raw)
				return err
			}
			return printRoutes(cmd.OutOrStdout(), v)
		},
	}
	cmd.Flags().StringVar(&admin, "admin", "http://127.0.0.1:8080", "the edge's admin address")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func fetchRoutes(ctx context.Context, admin string) (edge.TableView, []byte, error) {
	var v edge.TableView
	if !strings.Contains(admin, "://") {
		admin = "http://" + admin
	}
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimSuffix(admin, "/")+"/api/routes", nil)
	if err != nil {
		return v, nil, fmt.Errorf("routes: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return v, nil, fmt.Errorf("routes: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return v, nil, fmt.Errorf("routes: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return v, nil, fmt.Errorf("routes: %s answered %s", admin, resp.Status)
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, nil, fmt.Errorf("routes: %w", err)
	}
	return v, raw, nil
}

// printRoutes writes the table as `swarmgate routes` shows it: one line
// per HTTP route with its weight (and share of a weighted group), TLS mode,
// and each endpoint's health; then the L4 routes; then what was skipped.
func printRoutes(w io.Writer, v edge.TableView) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ROUTE\tHOSTS\tPATH\tTLS\tWEIGHT\tBALANCER\tHEALTH\tENDPOINTS\n")
	shares := edge.WeightShares(v.Routes)
	for i, r := range v.Routes {
		hosts := strings.Join(r.Hosts, ",")
		if r.Default {
			hosts += " (default)"
		}
		path := r.Path
		if r.Exact {
			path = "= " + path // as check shows it
		}
		if r.Strip {
			path += " (strip)"
		}
		weight := strconv.Itoa(r.Weight)
		if shares[i] >= 0 {
			weight += fmt.Sprintf(" (%d%%)", shares[i])
		}
		tlsMode := r.TLS
		switch tlsMode {
		case "", route.TLSOff:
			tlsMode = "off"
		case route.TLSAuto, route.TLSPassthrough:
		default:
			tlsMode = "cert:" + tlsMode
		}
		health := upCount(r.Endpoints)
		if r.Health != nil {
			health += ", checks " + r.Health.Path + " every " + r.Health.Interval
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Route, hosts, path, tlsMode, weight, r.Balancer,
			health, endpointList(r.Endpoints))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(v.L4) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintf(tw, "L4 ROUTE\tLISTENS\tHEALTH\tENDPOINTS\n")
		for _, r := range v.L4 {
			var on []string
			if r.Port > 0 {
				on = append(on, "tcp :"+strconv.Itoa(r.Port))
			}
			if len(r.SNI) > 0 {
				on = append(on, "sni "+strings.Join(r.SNI, ","))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Route, strings.Join(on, " "), upCount(r.Endpoints), endpointList(r.Endpoints))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, e := range v.Errors {
		fmt.Fprintf(w, "skipped service %s: label %s=%q: %s\n", e.Service, e.Label, e.Value, e.Reason)
	}
	for _, e := range v.Rejected {
		fmt.Fprintf(w, "rejected: %s\n", e)
	}
	return nil
}

// upCount says how many of eps are up: "2/3 up".
func upCount(eps []proxy.EndpointView) string {
	up := 0
	for _, e := range eps {
		if edge.EndpointState(e) == "up" {
			up++
		}
	}
	return fmt.Sprintf("%d/%d up", up, len(eps))
}

// endpointList gives each endpoint with its health: "ADDR up", "ADDR
// ejected until 15:04:05Z" (passive health), "ADDR down" (the active check
// failed), and the failures in a row when there are any.
func endpointList(eps []proxy.EndpointView) string {
	if len(eps) == 0 {
		return "none"
	}
	list := make([]string, 0, len(eps))
	for _, e := range eps {
		s := e.Addr + " " + edge.EndpointState(e)
		if !e.EjectedUntil.IsZero() {
			s += " until " + e.EjectedUntil.UTC().Format("15:04:05Z")
		}
		if e.Failures > 0 {
			s += fmt.Sprintf(" (%d failed)", e.Failures)
		}
		list = append(list, s)
	}
	return strings.Join(list, ", ")
}
