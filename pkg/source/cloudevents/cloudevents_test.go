package cloudevents

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trailkeep/trailkeep/internal/fixtures"
	"github.com/trailkeep/trailkeep/pkg/event"
)

func canonical(t testing.TB, ce map[string]any) (*event.Event, error) {
	doc, err := Map(ce)
	if err != nil {
		return nil, err
	}
	st := event.Stamp{Tenant: "acme", Tool: "registry", ReceivedAt: time.Date(2026, 2, 14, 0, 0, 0, 0, time.UTC)}
	if err := st.Apply(doc); err != nil {
		return nil, err
	}
	ev, _, err := event.Canonicalize(doc, event.DefaultLimits)
	return ev, err
}

func TestBatchFixture(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(fixtures.Dir(t), "registry", "cloudevents-batch.json"))
	if err != nil {
		t.Fatal(err)
	}
	elems, err := event.SplitArray(raw, 100)
	if err != nil {
		t.Fatal(err)
	}
	var items []map[string]any
	for _, e := range elems {
		m, err := event.Decode(e, event.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, m)
	}
	if len(items) != 2 {
		t.Fatalf("%d items", len(items))
	}
	ev, err := canonical(t, items[0])
	if err != nil {
		t.Fatal(err)
	}
	if ev.Action != "skill.rolled_back" || ev.Actor.Email != "sarah@acme.example" || ev.Change.FromVersion != "1.7.0" ||
		ev.OccurredAt.Format(time.RFC3339) != "2026-02-12T16:40:11Z" || ev.IdempotencyKey != `["cloudevents","https://skills.acme.example/registry","evt-7731"]` ||
		ev.Metadata["data.reason"] != "rate-limit rule broke CI" || ev.Source.Channel != "cloudevents" {
		t.Errorf("mapped %+v", ev)
	}
	ev, err = canonical(t, items[1])
	if err != nil {
		t.Fatal(err)
	}
	if ev.Resource.ID != "usr_88" || ev.Metadata["groups_removed"] != "skills-writers" || ev.Metadata["ce.subject"] != "usr_88" {
		t.Errorf("mapped %+v", ev)
	}
}

func TestErrors(t *testing.T) {
	base := func() map[string]any {
		return map[string]any{"specversion": "1.0", "id": "1", "source": "s", "type": "skill.updated",
			"data": map[string]any{"actor": map[string]any{"type": "user", "id": "u"}, "resource": map[string]any{"type": "skill", "id": "k"}}}
	}
	cases := []struct {
		mutate func(m map[string]any)
		want   string
	}{
		{func(m map[string]any) { delete(m, "id") }, "/id required"},
		{func(m map[string]any) { m["specversion"] = "0.3" }, "/specversion const"},
		{func(m map[string]any) { m["type"] = "com.acme.Skill-Updated" }, "/type pattern"},
		{func(m map[string]any) { m["data"] = "text" }, "/data type"},
		{func(m map[string]any) { delete(m["data"].(map[string]any), "actor") }, "/data/actor required"},
		{func(m map[string]any) { m["Bad_Ext"] = "x" }, "/Bad_Ext pattern"},
		{func(m map[string]any) { m["data_base64"] = "AAAA" }, "/data_base64 not"},
	}
	for _, c := range cases {
		m := base()
		c.mutate(m)
		_, err := Map(m)
		var ve *event.ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("%s: got %v", c.want, err)
		}
		found := false
		for _, fe := range ve.Errors {
			found = found || fe.Field+" "+fe.Rule == c.want
		}
		if !found {
			t.Errorf("got %v, want %s", ve, c.want)
		}
	}
	if _, err := canonical(t, base()); err != nil {
		t.Errorf("base event rejected: %v", err)
	}
}

func FuzzMap(f *testing.F) {
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"s","type":"skill.updated","subject":"x","data":{"actor":{"type":"user","id":"u"}}}`))
	f.Add([]byte(`{"specversion":"1.0","id":"","source":"s","type":"a.b","data":{"actor":1,"x":[1,{"y":null}]},"ext1":{"a":2}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := event.Decode(raw, event.DefaultLimits)
		if err != nil {
			return
		}
		if _, err := canonical(t, m); err != nil {
			var ve *event.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("non-validation error %T %v", err, err)
			}
		}
	})
}
