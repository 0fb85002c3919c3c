package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/proctest"
	"github.com/trailkeep/trailkeep/internal/s3test"
	"github.com/trailkeep/trailkeep/internal/sinktest"
	"github.com/trailkeep/trailkeep/pkg/archive"
	"github.com/trailkeep/trailkeep/pkg/chain"
	sinks3 "github.com/trailkeep/trailkeep/pkg/sink/s3"
	"github.com/trailkeep/trailkeep/pkg/sink/splunk/hectest"
)

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The exporter binary killed with SIGKILL in the middle of delivering resumes without
// loss: HEC ends up with every record (duplicates byte-identical, with their chain
// position), and the archive with every record exactly once, verifiable offline.
func TestKilledExporterResumesWithoutLoss(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "exporter")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	srv := s3test.Shared(t)
	bucket := srv.Bucket(t, true)
	f := sinktest.New(t, 3, 100)
	hec := hectest.New(hectest.Options{Token: "tok", Ack: true, AckDelay: 20 * time.Millisecond})
	url, err := hec.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hec.Close()
	addr := freeAddr(t)
	env := append(os.Environ(),
		"TRAILKEEP_KAFKA_BROKERS="+f.Broker, "TRAILKEEP_CHAINED_TOPIC="+f.Chained, "TRAILKEEP_CHECKPOINTS_TOPIC="+f.Checkpoints,
		"TRAILKEEP_EXPORTER_SINKS=splunk,s3", "TRAILKEEP_EXPORTER_GROUP_PREFIX=kill-"+f.Chained+"-", "TRAILKEEP_EXPORTER_ADDR="+addr,
		"TRAILKEEP_SPLUNK_HEC_URL="+url, "TRAILKEEP_SPLUNK_HEC_TOKEN=tok", "TRAILKEEP_SPLUNK_BATCH_RECORDS=50", "TRAILKEEP_SPLUNK_ACK_POLL_INTERVAL=50ms",
		"TRAILKEEP_SPLUNK_LINGER=10ms",
		"TRAILKEEP_S3_BUCKET="+bucket, "TRAILKEEP_S3_PREFIX=archive", "TRAILKEEP_S3_ENDPOINT="+srv.Endpoint, "TRAILKEEP_S3_PATH_STYLE=true",
		"TRAILKEEP_S3_ACCESS_KEY="+srv.AccessKey, "TRAILKEEP_S3_SECRET_KEY="+srv.SecretKey, "TRAILKEEP_S3_RETENTION=1d",
		"TRAILKEEP_S3_BATCH_RECORDS=70", "TRAILKEEP_S3_LINGER=100ms", "TRAILKEEP_LOG_LEVEL=warn")
	start := func() *exec.Cmd {
		cmd := exec.Command(bin)
		cmd.Env = env
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	f.Add(t, 3000)
	cmd := start()
	// Kill it once both sinks are partway.
	sinktest.Wait(t, 60*time.Second, func() error {
		if n := len(hec.Events()); n < 300 {
			return fmt.Errorf("%d events at HEC", n)
		}
		return nil
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	atKill := len(hec.Events())
	f.Add(t, 600)
	cmd = start()
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()

	sinktest.Wait(t, 120*time.Second, func() error {
		_, err := hectest.Check(hec.Events(), f.Want)
		return err
	})
	dups, err := hectest.Check(hec.Events(), f.Want)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("HEC: %d events for %d records (%d at the kill), %d duplicates, all byte-identical", len(hec.Events()), len(f.Want), atKill, dups)

	vs, err := chain.NewVerifiers(f.Log.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	b := sinks3.NewBucket(srv.Client(t, ""), bucket)
	sinktest.Wait(t, 120*time.Second, func() error {
		rep, err := archive.Verify(context.Background(), b, archive.Layout{Prefix: "archive"},
			archive.VerifyOptions{Deployment: f.Log.Deployment, Topic: f.Chained, Verifiers: vs})
		if err != nil {
			return err
		}
		n := uint64(0)
		for _, p := range rep.Partitions {
			n += p.Records
		}
		if len(rep.Problems) > 0 || n != uint64(len(f.Want)) {
			return fmt.Errorf("archive holds %d of %d records; problems %v", n, len(f.Want), rep.Problems)
		}
		return nil
	})

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, want := range []string{`trailkeep_exporter_sent_total{kind="records",sink="splunk"}`, `trailkeep_exporter_sink_up{sink="s3"} 1`,
		`trailkeep_exporter_last_acked_seq{partition="2",sink="s3"} 1199`, `trailkeep_exporter_lag_records{partition="0",sink="splunk",topic="`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if resp, err := http.Get("http://" + addr + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
}

// TestConfigErrors: an exporter whose consumer settings are out of bounds refuses to
// run, naming the variable and its bounds.
func TestConfigErrors(t *testing.T) {
	bin := proctest.Build(t, "exporter")
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"fetch wait too short", []string{"TRAILKEEP_EXPORTER_ADDR=", "TRAILKEEP_EXPORTER_SINKS=s3", "TRAILKEEP_KAFKA_FETCH_MAX_WAIT=1ms"}, "TRAILKEEP_KAFKA_FETCH_MAX_WAIT=1ms: want 10ms to 5s"},
		{"fetch min bytes too large", []string{"TRAILKEEP_EXPORTER_ADDR=", "TRAILKEEP_EXPORTER_SINKS=s3", "TRAILKEEP_KAFKA_FETCH_MIN_BYTES=104857600"}, "TRAILKEEP_KAFKA_FETCH_MIN_BYTES=104857600: want 1 to 52428800"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := proctest.Run(t, bin, tc.env...)
			if code != 1 || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, output:\n%s\nwant exit 1 naming %q", code, out, tc.want)
			}
		})
	}
}
