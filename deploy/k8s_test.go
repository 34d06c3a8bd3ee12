package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// object is one Kubernetes document.
type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	file string
	raw  []byte
}

// decode unmarshals the document into a typed view.
func (o object) decode(t *testing.T, v any) {
	t.Helper()
	if err := yaml.Unmarshal(o.raw, v); err != nil {
		t.Fatalf("%s: %s %s: %v", o.file, o.Kind, o.Metadata.Name, err)
	}
}

// parseYAMLFile splits a file into documents and parses each.
func parseYAMLFile(file string) ([]object, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out []object
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(doc, "")) == "" {
			continue
		}
		var o object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, i+1, err)
		}
		if o.APIVersion == "" || o.Kind == "" {
			return nil, fmt.Errorf("%s: document %d has no apiVersion or kind", file, i+1)
		}
		o.file, o.raw = file, []byte(doc)
		out = append(out, o)
	}
	return out, nil
}

type kustomizationSpec struct {
	Namespace string   `json:"namespace"`
	Resources []string `json:"resources"`
}

// kustomization is an overlay's objects, assembled from its resources.
type kustomization struct {
	dir     string
	objects []object
}

// loadKustomization assembles deploy/k8s/NAME by following resources the
// way kustomize does (files and directories; no patches are used).
func loadKustomization(t *testing.T, name string) *kustomization {
	t.Helper()
	k := &kustomization{dir: repoPath(k8sDir + "/" + name)}
	var load func(dir string)
	load = func(dir string) {
		objs, err := parseYAMLFile(filepath.Join(dir, "kustomization.yaml"))
		if err != nil || len(objs) != 1 {
			t.Fatalf("%s: %v", dir, err)
		}
		var spec kustomizationSpec
		objs[0].decode(t, &spec)
		if spec.Namespace != "linkissuer" {
			t.Errorf("%s: namespace %q, want linkissuer", dir, spec.Namespace)
		}
		for _, r := range spec.Resources {
			p := filepath.Join(dir, r)
			if st, err := os.Stat(p); err != nil {
				t.Fatalf("%s: resource %s: %v", dir, r, err)
			} else if st.IsDir() {
				load(p)
				continue
			}
			objs, err := parseYAMLFile(p)
			if err != nil {
				t.Fatal(err)
			}
			k.objects = append(k.objects, objs...)
		}
	}
	load(k.dir)
	return k
}

func (k *kustomization) all(kind string) []object {
	var out []object
	for _, o := range k.objects {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func (k *kustomization) get(t *testing.T, kind, name string) object {
	t.Helper()
	for _, o := range k.all(kind) {
		if o.Metadata.Name == name {
			return o
		}
	}
	t.Fatalf("%s: no %s %q", k.dir, kind, name)
	return object{}
}

type configMap struct {
	Data map[string]string `json:"data"`
}

func (k *kustomization) configMap(t *testing.T, name string) configMap {
	t.Helper()
	var cm configMap
	k.get(t, "ConfigMap", name).decode(t, &cm)
	return cm
}

type httpProbe struct {
	HTTPGet *struct {
		Path string          `json:"path"`
		Port json.RawMessage `json:"port"`
	} `json:"httpGet"`
}

type container struct {
	Name    string   `json:"name"`
	Image   string   `json:"image"`
	Args    []string `json:"args"`
	Command []string `json:"command"`
	Ports   []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
	EnvFrom []struct {
		ConfigMapRef *struct{ Name string } `json:"configMapRef"`
		SecretRef    *struct{ Name string } `json:"secretRef"`
	} `json:"envFrom"`
	Env []struct {
		Name      string `json:"name"`
		Value     string `json:"value"`
		ValueFrom any    `json:"valueFrom"`
	} `json:"env"`
	Resources struct {
		Requests map[string]string `json:"requests"`
		Limits   map[string]string `json:"limits"`
	} `json:"resources"`
	StartupProbe    *httpProbe `json:"startupProbe"`
	ReadinessProbe  *httpProbe `json:"readinessProbe"`
	LivenessProbe   *httpProbe `json:"livenessProbe"`
	SecurityContext *struct {
		AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `json:"readOnlyRootFilesystem"`
		Capabilities             *struct {
			Drop []string `json:"drop"`
		} `json:"capabilities"`
	} `json:"securityContext"`
}

type deployment struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Replicas *int `json:"replicas"`
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
			Spec struct {
				ServiceAccountName            string `json:"serviceAccountName"`
				TerminationGracePeriodSeconds *int   `json:"terminationGracePeriodSeconds"`
				SecurityContext               *struct {
					RunAsNonRoot *bool `json:"runAsNonRoot"`
					RunAsUser    *int  `json:"runAsUser"`
				} `json:"securityContext"`
				Containers []container `json:"containers"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

func (k *kustomization) deployments(t *testing.T) []deployment {
	t.Helper()
	var out []deployment
	for _, o := range k.all("Deployment") {
		var d deployment
		o.decode(t, &d)
		if len(d.Spec.Template.Spec.Containers) != 1 {
			t.Fatalf("deployment %s: want one container", d.Metadata.Name)
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no Deployment", k.dir)
	}
	return out
}

func (d deployment) container() container { return d.Spec.Template.Spec.Containers[0] }

// env is the container's environment: ConfigMaps from envFrom, then env.
func (d deployment) env(t *testing.T, k *kustomization) map[string]string {
	t.Helper()
	out := map[string]string{}
	c := d.container()
	for _, ef := range c.EnvFrom {
		if ef.SecretRef != nil {
			t.Errorf("deployment %s reads a Secret: keyless deployments have none", d.Metadata.Name)
		}
		if ef.ConfigMapRef != nil {
			for key, v := range k.configMap(t, ef.ConfigMapRef.Name).Data {
				out[key] = v
			}
		}
	}
	for _, e := range c.Env {
		out[e.Name] = e.Value
	}
	return out
}

// ceiling is the container's --sign-rate-ceiling.
func (d deployment) ceiling(t *testing.T) int {
	t.Helper()
	for _, a := range d.container().Args {
		if v, ok := strings.CutPrefix(a, "--sign-rate-ceiling="); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("deployment %s: %s: %v", d.Metadata.Name, a, err)
			}
			return n
		}
	}
	t.Errorf("deployment %s: no --sign-rate-ceiling: replicas would compete for the signBlob quota", d.Metadata.Name)
	return 0
}

// TestK8sParses parses every YAML file under deploy/k8s and checks that
// every manifest is used by exactly the kustomizations it belongs to.
func TestK8sParses(t *testing.T) {
	files := walkFiles(t, k8sDir, ".yaml")
	used := map[string]bool{}
	for _, f := range files {
		objs, err := parseYAMLFile(f)
		if err != nil {
			t.Error(err)
			continue
		}
		if filepath.Base(f) == "kustomization.yaml" {
			var spec kustomizationSpec
			objs[0].decode(t, &spec)
			for _, r := range spec.Resources {
				used[filepath.Join(filepath.Dir(f), r)] = true
			}
		}
	}
	for _, f := range files {
		if filepath.Base(f) != "kustomization.yaml" && !used[f] {
			t.Errorf("%s is in no kustomization", f)
		}
	}
}

// TestK8sKustomizeBuild builds the overlays with kubectl's kustomize, when
// installed, and checks that it yields what the assembly here reads.
func TestK8sKustomizeBuild(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed")
	}
	for _, overlay := range []string{"keda", "hpa"} {
		out, err := exec.Command(kubectl, "kustomize", repoPath(k8sDir+"/"+overlay)).Output()
		if err != nil {
			t.Errorf("kubectl kustomize %s: %v", overlay, err)
			continue
		}
		file := filepath.Join(t.TempDir(), overlay+".yaml")
		if err := os.WriteFile(file, out, 0o644); err != nil {
			t.Fatal(err)
		}
		built, err := parseYAMLFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := kindNames(built), kindNames(loadKustomization(t, overlay).objects); !slices.Equal(got, want) {
			t.Errorf("%s: kustomize builds %v, the test assembles %v", overlay, got, want)
		}
		if !bytes.Contains(out, []byte("namespace: linkissuer")) {
			t.Errorf("%s: objects are not placed in namespace linkissuer", overlay)
		}
	}
}

func kindNames(objs []object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.Kind+"/"+o.Metadata.Name)
	}
	sort.Strings(out)
	return out
}

// TestK8sDeployments checks each worker Deployment against the binary.
func TestK8sDeployments(t *testing.T) {
	b := mustBinary(t)
	port := b.worker.defaultPort(t)
	k := loadKustomization(t, "keda")
	for _, d := range k.deployments(t) {
		t.Run(d.Metadata.Name, func(t *testing.T) {
			c := d.container()
			checkArgs(t, b.worker, c.Args)
			env := d.env(t, k)
			set := map[string]bool{}
			for key := range env {
				set[key] = true
			}
			checkEnv(t, b.worker, set)

			httpPort := ""
			for _, p := range c.Ports {
				if strconv.Itoa(p.ContainerPort) == port {
					httpPort = p.Name
				}
			}
			if httpPort == "" {
				t.Fatalf("no container port %s (the binary's default; PORT is not set)", port)
			}
			if env["PORT"] != "" && env["PORT"] != port {
				t.Errorf("PORT=%s, container port %s", env["PORT"], port)
			}
			for name, tt := range map[string]struct {
				probe *httpProbe
				path  string
			}{
				"startupProbe":   {c.StartupProbe, "/readyz"},
				"readinessProbe": {c.ReadinessProbe, "/readyz"},
				"livenessProbe":  {c.LivenessProbe, "/healthz"},
			} {
				if tt.probe == nil || tt.probe.HTTPGet == nil {
					t.Errorf("no %s httpGet", name)
					continue
				}
				if tt.probe.HTTPGet.Path != tt.path {
					t.Errorf("%s path %q, want %q", name, tt.probe.HTTPGet.Path, tt.path)
				}
				if p := strings.Trim(string(tt.probe.HTTPGet.Port), `"`); p != httpPort && p != port {
					t.Errorf("%s port %s, want %s or %s", name, p, httpPort, port)
				}
			}

			grace := b.worker.defaultGrace(t)
			if v, ok := env["LINKISSUER_GRACE"]; ok {
				var err error
				if grace, err = time.ParseDuration(v); err != nil {
					t.Fatalf("LINKISSUER_GRACE=%q: %v", v, err)
				}
			}
			if tg := d.Spec.Template.Spec.TerminationGracePeriodSeconds; tg == nil {
				t.Errorf("no terminationGracePeriodSeconds; it must exceed the shutdown grace %s", grace)
			} else if time.Duration(*tg)*time.Second <= grace {
				t.Errorf("terminationGracePeriodSeconds %d must exceed the shutdown grace %s", *tg, grace)
			}

			pod := d.Spec.Template.Spec
			if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
				t.Error("pod securityContext: want runAsNonRoot and a non-zero runAsUser")
			}
			if sc := c.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
				t.Error("container securityContext: want no privilege escalation, a read-only root, capabilities drop ALL")
			}
			for _, r := range []string{"cpu", "memory"} {
				if c.Resources.Requests[r] == "" {
					t.Errorf("no %s request", r)
				}
			}
			limit, err := parseBytes(c.Resources.Limits["memory"])
			if err != nil {
				t.Fatalf("memory limit: %v", err)
			}
			if v, ok := env["GOMEMLIMIT"]; ok {
				soft, err := parseBytes(v)
				if err != nil || soft >= limit {
					t.Errorf("GOMEMLIMIT=%s must be below the memory limit %s (%v)", v, c.Resources.Limits["memory"], err)
				}
			}

			var sa object
			for _, o := range k.all("ServiceAccount") {
				if o.Metadata.Name == pod.ServiceAccountName {
					sa = o
				}
			}
			gsa := sa.Metadata.Annotations["iam.gke.io/gcp-service-account"]
			if gsa == "" {
				t.Fatalf("service account %q has no iam.gke.io/gcp-service-account annotation (Workload Identity)", pod.ServiceAccountName)
			}
			if env["LINKISSUER_SERVICE_ACCOUNT"] != gsa {
				t.Errorf("signs as %q, but Workload Identity gives the pod %q", env["LINKISSUER_SERVICE_ACCOUNT"], gsa)
			}
			if !strings.HasSuffix(gsa, "@"+env["GOOGLE_CLOUD_PROJECT"]+".iam.gserviceaccount.com") {
				t.Errorf("Google service account %q is not in GOOGLE_CLOUD_PROJECT %q", gsa, env["GOOGLE_CLOUD_PROJECT"])
			}
		})
	}
}

// TestK8sPodDisruptionBudgets checks that each PDB selects one Deployment.
func TestK8sPodDisruptionBudgets(t *testing.T) {
	k := loadKustomization(t, "keda")
	deps := k.deployments(t)
	covered := map[string]bool{}
	for _, o := range k.all("PodDisruptionBudget") {
		var pdb struct {
			Spec struct {
				MinAvailable   any `json:"minAvailable"`
				MaxUnavailable any `json:"maxUnavailable"`
				Selector       struct {
					MatchLabels map[string]string `json:"matchLabels"`
				} `json:"selector"`
			} `json:"spec"`
		}
		o.decode(t, &pdb)
		var hit []string
		for _, d := range deps {
			if selects(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels) {
				hit = append(hit, d.Metadata.Name)
				covered[d.Metadata.Name] = true
			}
		}
		if len(hit) != 1 {
			t.Errorf("PodDisruptionBudget %s selects %v, want one Deployment", o.Metadata.Name, hit)
		}
		if pdb.Spec.MinAvailable != nil {
			t.Errorf("PodDisruptionBudget %s: minAvailable blocks node drains at one replica; use maxUnavailable", o.Metadata.Name)
		}
	}
	for _, d := range deps {
		if !covered[d.Metadata.Name] {
			t.Errorf("deployment %s has no PodDisruptionBudget", d.Metadata.Name)
		}
	}
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// parseBytes reads a memory quantity: Kubernetes (256Mi, 1Gi) or Go
// GOMEMLIMIT (230MiB) suffixes, or plain bytes.
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"B", 1}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			return v * u.mult, err
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"256Mi": 256 << 20, "230MiB": 230 << 20, "1Gi": 1 << 30, "1024": 1024, "10B": 10} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parseBytes("lots"); err == nil {
		t.Error(`parseBytes("lots") succeeded`)
	}
}

// walkFiles lists the files under a repository directory with a suffix.
func walkFiles(t *testing.T, rel, suffix string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(repoPath(rel), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.HasSuffix(p, suffix) {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
