package deploy

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/trailkeep/trailkeep/internal/configref"
	"github.com/trailkeep/trailkeep/internal/repo"
)

var update = flag.Bool("update", false, "rewrite the golden renders in testdata/helm")

const (
	releaseName = "tk"
	namespace   = "audit"
)

// chartDir is deploy/helm/trailkeep.
func chartDir(t *testing.T) string {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "deploy", "helm", "trailkeep")
}

// render renders the chart with vals as `helm install tk -n audit` would, schema
// validation included.
func render(t *testing.T, ch *chart.Chart, vals map[string]any) (map[string]string, error) {
	t.Helper()
	rv, err := chartutil.ToRenderValues(ch, vals, common.ReleaseOptions{Name: releaseName, Namespace: namespace, IsInstall: true, Revision: 1}, nil)
	if err != nil {
		return nil, err
	}
	return engine.Render(ch, rv)
}

// object is one decoded manifest.
type object struct {
	file string
	kind string
	name string
	obj  any
}

// serviceMonitor is the part of monitoring.coreos.com/v1 ServiceMonitor the chart
// writes (the CRD's Go types live in the Prometheus operator, not k8s.io/api).
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// typed maps apiVersion/kind to the Go type a manifest must decode into.
func typed(apiVersion, kind string) (any, error) {
	switch apiVersion + "/" + kind {
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1/Service":
		return &corev1.Service{}, nil
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, nil
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, nil
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "networking.k8s.io/v1/Ingress":
		return &networkingv1.Ingress{}, nil
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, nil
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &serviceMonitor{}, nil
	}
	return nil, fmt.Errorf("the chart renders %s %s, which the test does not know: add its type", apiVersion, kind)
}

// decodeAll splits every rendered file into documents and decodes each strictly:
// duplicate keys (YAMLToJSONStrict) and unknown fields (DisallowUnknownFields) fail.
func decodeAll(t *testing.T, out map[string]string) []object {
	t.Helper()
	var files []string
	for f := range out {
		files = append(files, f)
	}
	sort.Strings(files)
	var objs []object
	for _, f := range files {
		if strings.HasSuffix(f, "NOTES.txt") {
			continue
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(out[f], -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			js, err := yaml.YAMLToJSONStrict([]byte(doc))
			if err != nil {
				t.Fatalf("%s document %d: %v\n%s", f, i, err, doc)
			}
			var tm metav1.TypeMeta
			if err := json.Unmarshal(js, &tm); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			o, err := typed(tm.APIVersion, tm.Kind)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			dec := json.NewDecoder(bytes.NewReader(js))
			dec.DisallowUnknownFields()
			if err := dec.Decode(o); err != nil {
				t.Fatalf("%s: %s does not decode strictly into %T: %v\n%s", f, tm.Kind, o, err, doc)
			}
			var meta struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
			}
			if err := json.Unmarshal(js, &meta); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			objs = append(objs, object{file: f, kind: tm.Kind, name: meta.Metadata.Name, obj: o})
		}
	}
	return objs
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// ciValues are the chart's ci/*-values.yaml files.
func ciValues(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "ci", "*-values.yaml"))
	if err != nil || len(files) < 4 {
		t.Fatalf("ci values files: %v %v (want minimal, production, TLS/SASL, every sink)", files, err)
	}
	return files
}

// TestChart renders every ci values file and holds the manifests to the chart's
// promises: lint-clean, strictly typed, restricted pods, probes, resources, matching
// selectors, secrets only by reference, variables the binaries read; and to the
// golden renders.
func TestChart(t *testing.T) {
	dir := chartDir(t)
	ch, err := loader.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := repo.Root()
	vars, err := configref.Collect(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, vf := range ciValues(t, dir) {
		name := strings.TrimSuffix(filepath.Base(vf), "-values.yaml")
		t.Run(name, func(t *testing.T) {
			vals, err := common.ReadValuesFile(vf)
			if err != nil {
				t.Fatal(err)
			}
			lintChart(t, dir, vals)
			out, err := render(t, ch, vals)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			objs := decodeAll(t, out)
			checkGolden(t, name, out)
			checkObjects(t, objs, vars)
			checkNotes(t, out)
		})
	}
}

func lintChart(t *testing.T, dir string, vals map[string]any) {
	t.Helper()
	l := lint.RunAll(dir, vals, namespace)
	for _, m := range l.Messages {
		if m.Severity >= support.WarningSev {
			t.Errorf("helm lint: %s", m)
		}
	}
}

// checkGolden compares the render with testdata/helm/NAME.yaml (-update rewrites).
func checkGolden(t *testing.T, name string, out map[string]string) {
	t.Helper()
	var files []string
	for f := range out {
		files = append(files, f)
	}
	sort.Strings(files)
	var b strings.Builder
	for _, f := range files {
		if strings.TrimSpace(out[f]) == "" {
			continue
		}
		fmt.Fprintf(&b, "# Source: %s\n%s\n", f, strings.TrimSpace(out[f]))
	}
	golden := filepath.Join("testdata", "helm", name+".yaml")
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./deploy -run TestChart -update writes it)", err)
	}
	if string(want) != b.String() {
		t.Errorf("render differs from %s; review the change, then go test ./deploy -run TestChart -update\n%s", golden, firstDiff(string(want), b.String()))
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n golden: %s\n render: %s", i+1, x, y)
		}
	}
	return ""
}

func checkNotes(t *testing.T, out map[string]string) {
	t.Helper()
	notes := out["trailkeep/templates/NOTES.txt"]
	for _, want := range []string{"curl", "/v1/hooks/claude-code", "trailctl verify"} {
		if !strings.Contains(notes, want) {
			t.Errorf("NOTES.txt lacks %q", want)
		}
	}
}

// workload is a pod template with the labels of its pods.
type workload struct {
	kind, name string
	pod        corev1.PodTemplateSpec
}

func checkObjects(t *testing.T, objs []object, vars map[string][]configref.Var) {
	t.Helper()
	configMaps := map[string]*corev1.ConfigMap{}
	var workloads []workload
	var services []*corev1.Service
	for _, o := range objs {
		switch v := o.obj.(type) {
		case *corev1.ConfigMap:
			configMaps[v.Name] = v
		case *appsv1.Deployment:
			workloads = append(workloads, workload{"Deployment", v.Name, v.Spec.Template})
			checkSelector(t, "Deployment "+v.Name, v.Spec.Selector, v.Spec.Template.Labels)
		case *appsv1.StatefulSet:
			workloads = append(workloads, workload{"StatefulSet", v.Name, v.Spec.Template})
			checkSelector(t, "StatefulSet "+v.Name, v.Spec.Selector, v.Spec.Template.Labels)
		case *corev1.Service:
			services = append(services, v)
		}
		if o.kind == "Secret" {
			t.Errorf("%s renders a Secret %s: secrets come from existing Secrets only", o.file, o.name)
		}
	}
	if len(workloads) < 3 {
		t.Fatalf("%d workloads rendered; want at least ingest, query and chainer", len(workloads))
	}
	for _, cm := range configMaps {
		checkConfigMap(t, cm)
	}
	for _, w := range workloads {
		t.Run(w.name, func(t *testing.T) {
			checkPod(t, w, configMaps, vars)
		})
	}
	for _, o := range objs {
		switch v := o.obj.(type) {
		case *policyv1.PodDisruptionBudget:
			matchesWorkload(t, "PodDisruptionBudget "+v.Name, v.Spec.Selector, workloads)
			if v.Spec.MinAvailable == nil && v.Spec.MaxUnavailable == nil {
				t.Errorf("PodDisruptionBudget %s bounds nothing", v.Name)
			}
		case *corev1.Service:
			matchesWorkload(t, "Service "+v.Name, &metav1.LabelSelector{MatchLabels: v.Spec.Selector}, workloads)
			checkServicePorts(t, v, workloads)
		case *autoscalingv2.HorizontalPodAutoscaler:
			if !hasWorkload(workloads, v.Spec.ScaleTargetRef.Kind, v.Spec.ScaleTargetRef.Name) {
				t.Errorf("HPA %s scales %s %s, which is not rendered", v.Name, v.Spec.ScaleTargetRef.Kind, v.Spec.ScaleTargetRef.Name)
			}
		case *networkingv1.Ingress:
			for _, r := range v.Spec.Rules {
				for _, p := range r.HTTP.Paths {
					if !hasService(services, p.Backend.Service.Name) {
						t.Errorf("Ingress %s routes to missing Service %s", v.Name, p.Backend.Service.Name)
					}
				}
			}
			if len(v.Spec.TLS) == 0 {
				t.Errorf("Ingress %s without TLS", v.Name)
			}
		case *networkingv1.NetworkPolicy:
			matchesWorkload(t, "NetworkPolicy "+v.Name, &v.Spec.PodSelector, workloads)
		case *serviceMonitor:
			sel, err := metav1.LabelSelectorAsSelector(&v.Spec.Selector)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, s := range services {
				if sel.Matches(labels.Set(s.Labels)) {
					n++
					if !servicePortNamed(s, v.Spec.Endpoints[0].Port) {
						t.Errorf("ServiceMonitor scrapes port %q, which Service %s lacks", v.Spec.Endpoints[0].Port, s.Name)
					}
				}
			}
			if n != len(workloads) {
				t.Errorf("ServiceMonitor selects %d Services, want one per workload (%d)", n, len(workloads))
			}
		}
	}
}

func checkSelector(t *testing.T, what string, sel *metav1.LabelSelector, podLabels map[string]string) {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || s.Empty() || !s.Matches(labels.Set(podLabels)) {
		t.Errorf("%s: selector %v does not select its own pods %v (%v)", what, sel, podLabels, err)
	}
}

// matchesWorkload: the selector picks exactly one workload's pods.
func matchesWorkload(t *testing.T, what string, sel *metav1.LabelSelector, ws []workload) {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || s.Empty() {
		t.Errorf("%s: empty or invalid selector %v (%v)", what, sel, err)
		return
	}
	var hit []string
	for _, w := range ws {
		if s.Matches(labels.Set(w.pod.Labels)) {
			hit = append(hit, w.name)
		}
	}
	if len(hit) != 1 {
		t.Errorf("%s selects the pods of %v; want exactly one workload", what, hit)
	}
}

func hasWorkload(ws []workload, kind, name string) bool {
	for _, w := range ws {
		if w.kind == kind && w.name == name {
			return true
		}
	}
	return false
}

func hasService(ss []*corev1.Service, name string) bool {
	for _, s := range ss {
		if s.Name == name {
			return true
		}
	}
	return false
}

func servicePortNamed(s *corev1.Service, name string) bool {
	for _, p := range s.Spec.Ports {
		if p.Name == name {
			return true
		}
	}
	return false
}

// checkServicePorts: each named targetPort exists on the selected pods' container.
func checkServicePorts(t *testing.T, s *corev1.Service, ws []workload) {
	t.Helper()
	sel := labels.SelectorFromSet(s.Spec.Selector)
	for _, w := range ws {
		if !sel.Matches(labels.Set(w.pod.Labels)) {
			continue
		}
		for _, sp := range s.Spec.Ports {
			found := false
			for _, c := range w.pod.Spec.Containers {
				for _, cp := range c.Ports {
					found = found || cp.Name == sp.TargetPort.String()
				}
			}
			if !found {
				t.Errorf("Service %s targets port %q, which %s's container lacks", s.Name, sp.TargetPort.String(), w.name)
			}
		}
	}
}

// sensitive names a variable whose value is a secret (its *_FILE form is a path).
var sensitive = regexp.MustCompile(`(PASSWORD|TOKENS?|SECRET|SECRET_KEY|ACCESS_KEY|API_KEY|SIGNER_KEY|IP_KEY)$`)

func checkConfigMap(t *testing.T, cm *corev1.ConfigMap) {
	t.Helper()
	for k, v := range cm.Data {
		if sensitive.MatchString(k) {
			t.Errorf("ConfigMap %s holds %s=%q: a secret must come from a Secret", cm.Name, k, v)
		}
	}
}

// checkPod holds one pod template to the restricted profile and the binary's own
// configuration.
func checkPod(t *testing.T, w workload, cms map[string]*corev1.ConfigMap, vars map[string][]configref.Var) {
	t.Helper()
	spec := w.pod.Spec
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and seccomp RuntimeDefault", psc)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("mounts a service-account token it never uses")
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Error("uses a host namespace")
	}
	if len(spec.Containers) != 1 || len(spec.InitContainers) != 0 {
		t.Fatalf("%d containers, %d init containers; want one", len(spec.Containers), len(spec.InitContainers))
	}
	c := spec.Containers[0]
	checkContainer(t, c)
	known := map[string]bool{}
	for _, v := range vars[c.Name] {
		known[v.Name] = true
	}
	if len(known) == 0 {
		t.Fatalf("container %q is not a binary configref knows", c.Name)
	}
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			t.Errorf("envFrom %+v: only the component's ConfigMap", ef)
			continue
		}
		cm, ok := cms[ef.ConfigMapRef.Name]
		if !ok {
			t.Errorf("envFrom names missing ConfigMap %s", ef.ConfigMapRef.Name)
			continue
		}
		for k, v := range cm.Data {
			env[k] = v
		}
	}
	for _, e := range c.Env {
		env[e.Name] = e.Value
		if sensitive.MatchString(e.Name) && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
			t.Errorf("%s is set by value: a secret must come from a secretKeyRef", e.Name)
		}
	}
	for k := range env {
		if !known[k] {
			t.Errorf("sets %s, which %s does not read", k, c.Name)
		}
	}
	for _, v := range vars[c.Name] {
		if _, ok := env[v.Name]; v.Required && !ok {
			t.Errorf("%s needs %s", c.Name, v.Name)
		}
	}
	checkSecretFiles(t, c, spec.Volumes, env)
	checkIdentity(t, w, c)
}

func checkContainer(t *testing.T, c corev1.Container) {
	t.Helper()
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("container has no securityContext")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("allowPrivilegeEscalation is not false")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("root filesystem is writable")
	case sc.Privileged != nil && *sc.Privileged:
		t.Error("privileged")
	case sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0:
		t.Errorf("capabilities %+v: want drop [ALL], add none", sc.Capabilities)
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0:
		t.Error("may run as root")
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("liveness probe %+v: want GET /healthz", c.LivenessProbe)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe %+v: want GET /readyz", c.ReadinessProbe)
	}
	for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
		if p != nil && p.HTTPGet != nil && !containerPortNamed(c, p.HTTPGet.Port.String()) {
			t.Errorf("probe on port %q, which the container does not declare", p.HTTPGet.Port.String())
		}
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want cpu and memory requests and a memory limit", c.Resources)
	}
	if ref, tag, _ := strings.Cut(c.Image[strings.LastIndex(c.Image, "/")+1:], ":"); !strings.Contains(c.Image, "@sha256:") && (tag == "" || tag == "latest") {
		t.Errorf("image %q (%s) is not pinned", c.Image, ref)
	}
	if !strings.HasSuffix(strings.Split(strings.Split(c.Image, "@")[0], ":")[0], "/"+c.Name) {
		t.Errorf("image %q is not the %s image", c.Image, c.Name)
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		mounted = mounted || m.MountPath == "/tmp"
	}
	if !mounted {
		t.Error("no writable /tmp on a read-only root filesystem")
	}
}

func containerPortNamed(c corev1.Container, name string) bool {
	for _, p := range c.Ports {
		if p.Name == name {
			return true
		}
	}
	return false
}

// checkSecretFiles: every *_FILE variable points at a key projected from a Secret
// volume mounted read-only in this container.
func checkSecretFiles(t *testing.T, c corev1.Container, vols []corev1.Volume, env map[string]string) {
	t.Helper()
	byName := map[string]corev1.Volume{}
	for _, v := range vols {
		byName[v.Name] = v
	}
	for k, p := range env {
		if !strings.HasSuffix(k, "_FILE") {
			continue
		}
		ok := false
		for _, m := range c.VolumeMounts {
			v := byName[m.Name]
			if path.Dir(p) != m.MountPath || v.Secret == nil || !m.ReadOnly {
				continue
			}
			for _, it := range v.Secret.Items {
				ok = ok || it.Path == path.Base(p)
			}
		}
		if !ok {
			t.Errorf("%s=%s is not a key of a read-only Secret volume of the container", k, p)
		}
	}
}

// checkIdentity: the chainer's transactional id and an exporter's static membership
// are the pod's stable name.
func checkIdentity(t *testing.T, w workload, c corev1.Container) {
	t.Helper()
	want := map[string]string{"chainer": "TRAILKEEP_CHAINER_TRANSACTIONAL_ID", "exporter": "TRAILKEEP_EXPORTER_INSTANCE_ID"}[c.Name]
	if want == "" {
		return
	}
	if w.kind != "StatefulSet" {
		t.Errorf("%s is a %s; its Kafka identity needs a StatefulSet's stable pod names", c.Name, w.kind)
	}
	for _, e := range c.Env {
		if e.Name == want && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name" {
			return
		}
	}
	t.Errorf("%s is not taken from the pod name", want)
}

// TestChartRejectsBadValues shows the schema failing typos and unsafe values with a
// message that names the field.
func TestChartRejectsBadValues(t *testing.T) {
	dir := chartDir(t)
	ch, err := loader.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	base, err := common.ReadValuesFile(filepath.Join(dir, "ci", "minimal-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		overlay string
		want    []string
	}{
		{"typo at the top", "replicaCount: 3", []string{"replicaCount"}},
		{"typo inside", "ingest: {replica: 3}", []string{"/ingest", "replica"}},
		{"no brokers", "kafka: {brokers: []}", []string{"/kafka/brokers", "minItems"}},
		{"broker without port", "kafka: {brokers: [kafka]}", []string{"/kafka/brokers/0"}},
		{"missing token secret", "ingest: {tokensSecret: {name: ''}}", []string{"/ingest/tokensSecret/name"}},
		{"latest tag", "image: {tag: latest}", []string{"/image/tag"}},
		{"SASL in clear text", "kafka: {sasl: {mechanism: PLAIN, username: u, passwordSecret: {name: p}}}", []string{"/kafka/tls/enabled"}},
		{"unknown SASL mechanism", "kafka: {sasl: {mechanism: GSSAPI}}", []string{"/kafka/sasl/mechanism"}},
		{"archive without bucket", "exporter: {s3: {enabled: true}}", []string{"/exporter/s3/bucket"}},
		{"retention unit", "exporter: {s3: {retention: 6 years}}", []string{"/exporter/s3/retention"}},
		{"secret value inline", "ingest: {tokensSecret: {name: x, key: k, value: '{\"tokens\":[]}'}}", []string{"/ingest/tokensSecret", "value"}},
		{"bad duration", "chainer: {checkpointInterval: 5 seconds}", []string{"/chainer/checkpointInterval"}},
		{"bad refresh duration", "chainer: {checkpointRefresh: a day}", []string{"/chainer/checkpointRefresh"}},
		{"fetch wait over 5s", "kafka: {fetch: {maxWait: 10s}}", []string{"/kafka/fetch/maxWait"}},
		{"fetch wait under 10ms", "kafka: {fetch: {maxWait: 5ms}}", []string{"/kafka/fetch/maxWait"}},
		{"fetch min bytes zero", "kafka: {fetch: {minBytes: 0}}", []string{"/kafka/fetch/minBytes"}},
		{"fetch min bytes over the fetch limit", "kafka: {fetch: {minBytes: 52428801}}", []string{"/kafka/fetch/minBytes"}},
		// env lands in a ConfigMap: no secret may come that way, whatever component.
		// (The library reports these at a wrong instance path, so the name is checked.)
		{"password in env", "query: {env: {TRAILKEEP_CLICKHOUSE_PASSWORD: hunter2}}", []string{"invalid propertyName 'TRAILKEEP_CLICKHOUSE_PASSWORD'"}},
		{"tokens in env", "ingest: {env: {TRAILKEEP_INGEST_TOKENS: '{}'}}", []string{"invalid propertyName 'TRAILKEEP_INGEST_TOKENS'"}},
		{"signing key in env", "chainer: {env: {TRAILKEEP_SIGNER_KEY: k}}", []string{"invalid propertyName 'TRAILKEEP_SIGNER_KEY'"}},
		{"HEC token in env", "exporter: {splunk: {env: {TRAILKEEP_SPLUNK_HEC_TOKEN: t}}}", []string{"invalid propertyName 'TRAILKEEP_SPLUNK_HEC_TOKEN'"}},
		{"S3 secret in env", "exporter: {s3: {env: {TRAILKEEP_S3_SECRET_KEY: s}}}", []string{"invalid propertyName 'TRAILKEEP_S3_SECRET_KEY'"}},
		{"Datadog key in env", "exporter: {datadog: {env: {DD_API_KEY: k}}}", []string{"invalid propertyName 'DD_API_KEY'"}},
		{"SASL password in env", "ingest: {env: {TRAILKEEP_KAFKA_SASL_PASSWORD: p}}", []string{"invalid propertyName 'TRAILKEEP_KAFKA_SASL_PASSWORD'"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			over, err := common.ReadValues([]byte(tc.overlay))
			if err != nil {
				t.Fatal(err)
			}
			vals := chartutil.CoalesceTables(over.AsMap(), copyValues(t, base))
			_, err = render(t, ch, vals)
			if err == nil {
				t.Fatalf("values %q rendered; want a schema error", tc.overlay)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not name %q:\n%v", w, err)
				}
			}
		})
	}
}

func copyValues(t *testing.T, v common.Values) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestChartDefaults: with nothing but the required values, topics are created for
// production durability (replication 3, min.insync.replicas 2) by every component
// that creates topics.
func TestChartDefaults(t *testing.T) {
	dir := chartDir(t)
	ch, err := loader.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := common.ReadValuesFile(filepath.Join(dir, "ci", "minimal-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := render(t, ch, vals)
	if err != nil {
		t.Fatal(err)
	}
	cms := map[string]map[string]string{}
	for _, o := range decodeAll(t, out) {
		if cm, ok := o.obj.(*corev1.ConfigMap); ok {
			cms[strings.TrimPrefix(cm.Name, releaseName+"-trailkeep-")] = cm.Data
		}
	}
	for _, tc := range []struct{ component, key, want string }{
		{"ingest", "TRAILKEEP_EVENTS_REPLICATION", "3"},
		{"ingest", "TRAILKEEP_KAFKA_MIN_INSYNC_REPLICAS", "2"},
		{"chainer", "TRAILKEEP_CHAINER_REPLICATION", "3"},
		{"chainer", "TRAILKEEP_KAFKA_MIN_INSYNC_REPLICAS", "2"},
	} {
		t.Run(tc.component+" "+tc.key, func(t *testing.T) {
			if got := cms[tc.component][tc.key]; got != tc.want {
				t.Errorf("%s = %q, want %q", tc.key, got, tc.want)
			}
		})
	}
}

// TestChartEnvRefusesEverySecret: for every variable any binary reads whose value is
// a secret (the names the ConfigMap check calls sensitive), the schema refuses it in
// the free-form env of every component, since env is rendered into a ConfigMap; and
// the schema's rule is the same expression the ConfigMap check uses.
func TestChartEnvRefusesEverySecret(t *testing.T) {
	dir := chartDir(t)
	ch, err := loader.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"pattern": "`+sensitive.String()+`"`) {
		t.Fatalf("values.schema.json does not refuse env names with the ConfigMap check's expression %s", sensitive)
	}
	base, err := common.ReadValuesFile(filepath.Join(dir, "ci", "minimal-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	root, _ := repo.Root()
	vars, err := configref.Collect(root)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, vs := range vars {
		for _, v := range vs {
			if seen[v.Name] || !sensitive.MatchString(v.Name) {
				continue
			}
			seen[v.Name] = true
			for _, where := range []string{"ingest", "query", "chainer", "exporter: {s3", "exporter: {splunk", "exporter: {datadog"} {
				overlay := where + ": {env: {" + v.Name + ": x}}"
				if strings.HasPrefix(where, "exporter") {
					overlay = where + ": {env: {" + v.Name + ": x}}}"
				}
				over, err := common.ReadValues([]byte(overlay))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := render(t, ch, chartutil.CoalesceTables(over.AsMap(), copyValues(t, base))); err == nil {
					t.Errorf("%s: the schema lets the secret %s into a ConfigMap", overlay, v.Name)
				}
			}
		}
	}
	if len(seen) < 8 {
		t.Fatalf("only %d secret variables found: %v", len(seen), seen)
	}
}
