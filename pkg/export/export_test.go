package export_test

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/chaintest"
	"github.com/trailkeep/trailkeep/pkg/chain"
	"github.com/trailkeep/trailkeep/pkg/event"
	"github.com/trailkeep/trailkeep/pkg/export"
)

func records(t *testing.T) ([]chain.Record, *chaintest.Log) {
	log := chaintest.New(t, "export", 0)
	at := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	log.Add(0, "acme", at, chaintest.Doc("skill.updated", "=HYPERLINK(\"http://x\")", "skill", "a<b>&c"))
	log.Add(0, "acme", at.Add(time.Minute), chaintest.Doc("team.member_removed", "sarah@acme.example", "team", "platform"))
	log.Add(1, "globex", at.Add(2*time.Minute), chaintest.Doc("skill.created", "ops", "skill", "deploy"))
	return log.Records, log
}

func encode(t *testing.T, format string, recs []chain.Record) []byte {
	var buf bytes.Buffer
	enc, err := export.NewEncoder(format, &buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		ev, err := event.Unmarshal(r.Event)
		if err != nil {
			t.Fatal(err)
		}
		if err := enc.Write(r, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Every format keeps what is needed to re-hash each record: the canonical event
// byte for byte and the chain position.
func TestFormatsKeepRecordsProvable(t *testing.T) {
	recs, _ := records(t)
	check := func(format string, i int, r chain.Record) {
		t.Helper()
		if r.ComputeLeafHash() != recs[i].LeafHash || r.LeafHash != recs[i].LeafHash {
			t.Fatalf("%s record %d does not re-hash to its leaf hash", format, i)
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(encode(t, "ndjson", recs)))
	i := 0
	for ; sc.Scan(); i++ {
		var r chain.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		check("ndjson", i, r)
	}
	if i != 3 {
		t.Fatalf("ndjson has %d lines", i)
	}

	var arr []chain.Record
	if err := json.Unmarshal(encode(t, "json", recs), &arr); err != nil || len(arr) != 3 {
		t.Fatalf("json: %v (%d)", err, len(arr))
	}
	for i, r := range arr {
		check("json", i, r)
	}
	if string(encode(t, "json", nil)) != "[]\n" {
		t.Fatal("an empty json export is not an empty array")
	}

	rows, err := csv.NewReader(bytes.NewReader(encode(t, "csv", recs))).ReadAll()
	if err != nil || len(rows) != 4 || strings.Join(rows[0], ",") != strings.Join(export.CSVHeader, ",") {
		t.Fatalf("csv: %v %v", rows, err)
	}
	if rows[1][3] != `'=HYPERLINK("http://x")` {
		t.Fatalf("csv did not neutralise a formula: %q", rows[1][3])
	}
	if rows[1][len(rows[1])-1] != string(recs[0].Event) || rows[3][15] != "0" || rows[3][14] != "1" || rows[1][17] != recs[0].LeafHash.String() {
		t.Fatalf("csv row lacks the verbatim event or chain position: %q", rows[1])
	}

	sc = bufio.NewScanner(bytes.NewReader(encode(t, "ocsf", recs)))
	var ocsf []map[string]any
	for sc.Scan() {
		var o map[string]any
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			t.Fatal(err)
		}
		ocsf = append(ocsf, o)
	}
	if len(ocsf) != 3 || ocsf[0]["class_uid"] != 6003.0 || ocsf[0]["type_uid"] != 600303.0 || ocsf[1]["activity_id"] != 4.0 || ocsf[2]["activity_id"] != 1.0 || ocsf[0]["status_id"] != 1.0 {
		t.Fatalf("ocsf mapping: %v", ocsf)
	}
	// The event inside OCSF is the canonical bytes, not an HTML-escaped copy.
	if line := strings.Split(string(encode(t, "ocsf", recs[:1])), "\n")[0]; !strings.Contains(line, string(recs[0].Event)) {
		t.Fatalf("ocsf changed the canonical event bytes: %s", line)
	}
	if _, err := export.NewEncoder("xml", nil); err == nil {
		t.Fatal("an unknown format was accepted")
	}
}

func TestSignedManifest(t *testing.T) {
	recs, log := records(t)
	tr := export.NewTracker("event:* tenant:acme", []string{"acme"}, "ndjson", "auditor@acme.example", time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC))
	var file bytes.Buffer
	enc, _ := export.NewEncoder("ndjson", tr.Writer(&file))
	for _, r := range recs {
		ev, _ := event.Unmarshal(r.Event)
		enc.Write(r, ev)
		tr.Observe(r, ev)
	}
	enc.Close()
	cp := log.Sign(0)
	parts := tr.PartitionRanges()
	parts[0].Checkpoint, parts[0].CheckpointSize = string(cp.Note), 2
	m := tr.Finish("out.ndjson")
	if m.Rows != 3 || len(m.Partitions) != 2 || m.Partitions[0].LastSeq != 1 || m.Partitions[1].FirstSeq != 0 || m.OccurredFrom != "2026-11-01T08:00:00.000000000Z" || m.File.Bytes != uint64(file.Len()) {
		t.Fatalf("manifest %+v", m)
	}

	skey, vkey, _ := chain.GenerateKey("exporter")
	signer, _ := chain.NewSigner(skey)
	signed, err := export.Sign(m, signer)
	if err != nil {
		t.Fatal(err)
	}
	exporter, _ := chain.NewVerifiers(vkey)
	got, err := export.Open(signed, exporter)
	if err != nil || got.File.SHA256 != m.File.SHA256 {
		t.Fatalf("Open: %+v %v", got, err)
	}
	if err := got.CheckFile(bytes.NewReader(file.Bytes())); err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(file.Bytes(), []byte("sarah"), []byte("sarak"), 1)
	if err := got.CheckFile(bytes.NewReader(tampered)); !errors.Is(err, export.ErrManifest) {
		t.Fatalf("a changed file passed: %v", err)
	}
	if _, err := export.Open(bytes.Replace(signed, []byte(`"rows": 3`), []byte(`"rows": 2`), 1), exporter); !errors.Is(err, export.ErrManifest) {
		t.Fatalf("a changed manifest passed: %v", err)
	}
	logKey, _ := chain.NewVerifiers(log.VerifierKey)
	uncovered, err := got.CheckCheckpoints(logKey)
	if err != nil || len(uncovered) != 1 || uncovered[0] != 1 {
		t.Fatalf("CheckCheckpoints = %v, %v", uncovered, err)
	}
	if _, err := got.CheckCheckpoints(exporter); err == nil {
		t.Fatal("checkpoints verified with the exporter's key instead of the log's")
	}
}
