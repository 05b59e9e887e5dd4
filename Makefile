# Outpost build. `make server` on a fresh Debian 12 machine (as root) installs what the build
# and the run need, builds everything and starts a single-node server.
include scripts/versions.mk

SHELL        := /bin/bash
PKG          := github.com/outpostk8s/outpost
VERSION      ?= $(shell git describe --tags --match 'v*' --dirty 2>/dev/null || echo v0.0.0-$(COMMIT))
COMMIT       ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
GOARCH       ?= $(shell go env GOARCH)
BUILD        := build
# bin/outpost is the file users download: the small outer binary (cmd/outpost-outer) carrying
# the payload (pkg/payload), which holds the inner outpost program (cmd/outpost), the bundled
# binaries and the images as one zstd archive.
ASSETS       := pkg/payload/embedded/assets/$(GOARCH)
BIN          := bin/outpost
INNER        := $(BUILD)/inner/outpost
IMAGE_TARS   := $(BUILD)/images/pause.tar $(BUILD)/images/coredns.tar $(BUILD)/images/local-path.tar
# netgo, osusergo, no SQLite extension loading and no Antithesis SDK (kine's NATS driver links
# it; it dlopens its library): nothing in the static binary asks glibc for NSS or dlopen, so it
# runs with no shared library at all.
TAGS         := providerless,netgo,osusergo,kustomize_disable_go_plugin_support,sqlite_omit_load_extension,no_antithesis_sdk
ARGS         ?=
# go-nvml builds against a header full of deprecation notices: keep test output readable.
export CGO_CFLAGS ?= -O2 -g -Wno-deprecated-declarations

V  := $(PKG)/pkg/version
CB := k8s.io/component-base/version
CG := k8s.io/client-go/pkg/version
KMINOR := $(word 2,$(subst ., ,$(KUBERNETES_VERSION)))
# Version strings, for the inner and the outer binary.
VERSION_X := -X $(V).Outpost=$(VERSION) -X $(V).GitCommit=$(COMMIT) -X $(V).Kubernetes=$(KUBERNETES_VERSION) \
	-X $(V).Containerd=$(CONTAINERD_VERSION) -X $(V).Runc=$(RUNC_VERSION) -X $(V).CNIPlugins=$(CNI_VERSION) \
	-X $(V).CoreDNS=$(COREDNS_VERSION) -X $(V).PauseImage=$(PAUSE_IMAGE) -X $(V).CoreDNSImage=$(COREDNS_IMAGE) \
	-X $(V).LocalPathImage=$(LOCALPATH_IMAGE) \
	-X $(CB).gitVersion=$(KUBERNETES_VERSION) -X $(CB).gitMajor=1 -X $(CB).gitMinor=$(KMINOR) \
	-X $(CB).gitTreeState=clean -X $(CB).gitCommit=$(COMMIT) \
	-X $(CG).gitVersion=$(KUBERNETES_VERSION) -X $(CG).gitMajor=1 -X $(CG).gitMinor=$(KMINOR)
# The inner binary is static: cgo (SQLite) linked with glibc's archive, so it runs on any Linux,
# even in an empty chroot. NVML is not in it: the GPU helper in the payload loads libnvidia-ml.
LDFLAGS := -s -w -linkmode=external -extldflags=-static $(VERSION_X)
# The outer binary: no cgo, so static by itself; it answers --version.
OUTER_LDFLAGS := -s -w $(VERSION_X)
# The GPU helper: dynamic, lazy binding (go-nvml leaves NVML's symbols unresolved until
# libnvidia-ml is loaded at run time).
HELPER_LDFLAGS := -s -w -extldflags=-Wl,-z,lazy

# Host packages: the build (runc's seccomp, zstd), the run (iptables, ipset, conntrack, mount tools)
# and the tests (shellcheck, systemd-analyze, postgresql, zsh).
DEB_PACKAGES := libseccomp-dev pkg-config gcc iptables ipset conntrack ethtool socat kmod iproute2 zstd \
	util-linux mount busybox-static curl ca-certificates shellcheck systemd postgresql zsh

.PHONY: all arm64-test contrib deps build inner payload images test-images server test unit fuzz lint integration integration-tests bench clean dist release dist-arm64 deps-arm64 gpu-hwtest conformance

all: build

# install_debs PACKAGES[,APT-FLAGS]: apt-installs those of PACKAGES that are missing.
define install_debs
@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || dpkg -s $$p:$$(dpkg --print-architecture) >/dev/null 2>&1 || missing="$$missing $$p"; done; \
if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) $$missing; fi
endef

deps:
	$(call install_debs,$(DEB_PACKAGES))
	@command -v go >/dev/null || { echo "Go 1.26+ is required: https://go.dev/dl/"; exit 1; }

# The bundled binaries. The GPU helper (cmd/outpost-gpu) is one: its sources rebuild it.
HELPER_SRC := $(shell find cmd/outpost-gpu pkg/gpu/gpuhelper pkg/gpu/gpulib pkg/gpu/mockgpu pkg/gpu/nvmllib pkg/gpu/detect pkg/gpu/health pkg/gpu/mig pkg/gpu/nvcdispec pkg/gpu/cudacheck -name '*.go' ! -name '*_test.go')
BUNDLED := $(BUILD)/payload/.built
$(BUNDLED): scripts/build-payload.sh scripts/versions.mk scripts/payload/containerd/main.go scripts/payload/containerd/go.mod scripts/payload/containerd/go.sum $(HELPER_SRC) go.sum
	CONTAINERD_VERSION=$(CONTAINERD_VERSION) RUNC_VERSION=$(RUNC_VERSION) CNI_VERSION=$(CNI_VERSION) CRICTL_VERSION=$(CRICTL_VERSION) \
		scripts/build-payload.sh $(BUILD)/payload
	touch $@

# The inner program. Only go knows its sources (FORCE); the build is reproducible, so an
# unchanged binary keeps its file and time and the archive below is not packed again.
inner: $(INNER)
$(INNER): FORCE
	@mkdir -p $(dir $@)
	CGO_ENABLED=1 go build -tags $(TAGS) -trimpath -ldflags "$(LDFLAGS)" -o $@.new ./cmd/outpost
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi
FORCE:

# The payload archive. PAYLOAD_ZSTD (zstd's options: about 2.5 min on 2 cores) can be lowered
# for a quick local build: `make build PAYLOAD_ZSTD=-3`. A change of options packs it again.
PAYLOAD_ZSTD ?= --ultra -20 --long=28 -T0
PAYLOAD_OPTS := $(BUILD)/payload.zstd-options
$(PAYLOAD_OPTS): FORCE
	@mkdir -p $(dir $@)
	@echo '$(PAYLOAD_ZSTD)' | cmp -s - $@ || echo '$(PAYLOAD_ZSTD)' > $@
payload: $(ASSETS)/payload.tar.zst
$(ASSETS)/payload.tar.zst: $(INNER) $(BUNDLED) $(IMAGE_TARS) $(PAYLOAD_OPTS) scripts/pack-payload.sh
	PAYLOAD_ZSTD='$(PAYLOAD_ZSTD)' scripts/pack-payload.sh $@ $(INNER) $(BUILD)/payload/bin $(IMAGE_TARS)

# Images are single-layer OCI archives of static binaries, built without a registry or engine.
images: $(IMAGE_TARS)
$(BUILD)/images/pause.tar: scripts/images/pause/main.go scripts/ociimage/main.go
	@mkdir -p $(BUILD)/images
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o $(BUILD)/images/pause ./scripts/images/pause
	go run ./scripts/ociimage -name $(PAUSE_IMAGE) -o $@ -entrypoint /pause /pause=$(BUILD)/images/pause
$(BUILD)/images/coredns.tar: scripts/images/coredns/main.go scripts/images/coredns/go.mod scripts/ociimage/main.go
	@mkdir -p $(BUILD)/images
	cd scripts/images/coredns && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o ../../../$(BUILD)/images/coredns .
	go run ./scripts/ociimage -name $(COREDNS_IMAGE) -o $@ -entrypoint /coredns /coredns=$(BUILD)/images/coredns
# One image for the provisioner and its helper pods: the upstream provisioner, and our helper
# in place of the shell scripts (manifests/local-storage.yaml).
$(BUILD)/images/local-path.tar: scripts/images/local-path/go.mod scripts/images/local-path/go.sum scripts/images/localpath-helper/main.go scripts/ociimage/main.go
	@mkdir -p $(BUILD)/images
	cd scripts/images/local-path && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o ../../../$(BUILD)/images/local-path-provisioner github.com/rancher/local-path-provisioner
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o $(BUILD)/images/localpath-helper ./scripts/images/localpath-helper
	go run ./scripts/ociimage -name $(LOCALPATH_IMAGE) -o $@ -entrypoint /local-path-provisioner \
		/local-path-provisioner=$(BUILD)/images/local-path-provisioner /helper=$(BUILD)/images/localpath-helper

test-images: $(BUILD)/test-images/optest.tar
$(BUILD)/test-images/optest.tar: $(wildcard tests/images/optest/*.go) scripts/ociimage/main.go
	@mkdir -p $(BUILD)/test-images
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o $(BUILD)/test-images/optest ./tests/images/optest
	go run ./scripts/ociimage -name $(TEST_IMAGE) -o $@ -entrypoint /optest /optest=$(BUILD)/test-images/optest

build: deps payload
	CGO_ENABLED=0 go build -trimpath -ldflags "$(OUTER_LDFLAGS)" -o $(BIN) ./cmd/outpost-outer
	@ls -l $(BIN) | awk '{printf "built %s (%.1f MiB)\n", $$9, $$5/1048576}'

server: build
	$(BIN) server $(ARGS)

# Packages that do not link k8s.io/kubernetes run with the race detector; the rest without
# (racing that tree would rebuild it instrumented), linked with lazy binding like the binary:
# go-nvml's symbols resolve only once libnvidia-ml is loaded. Then each fuzz target for a few seconds.
unit:
	go test -count=1 -race $$(scripts/unit-pkgs.sh light)
	go test -count=1 -ldflags=-extldflags=-Wl,-z,lazy $$(scripts/unit-pkgs.sh heavy)
	$(MAKE) fuzz

FUZZTIME ?= 10s
fuzz:
	go test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./pkg/token
	go test -run='^$$' -fuzz='^FuzzApply$$' -fuzztime=$(FUZZTIME) ./pkg/spec/configfile
	go test -run='^$$' -fuzz='^FuzzDecodeRequest$$' -fuzztime=$(FUZZTIME) ./pkg/join

# staticcheck, pinned in scripts/tools (its own module), built once into build/tools.
STATICCHECK := $(BUILD)/tools/staticcheck
$(STATICCHECK): scripts/tools/go.mod scripts/tools/go.sum
	@mkdir -p $(BUILD)/tools
	cd scripts/tools && go build -o ../../$(STATICCHECK) honnef.co/go/tools/cmd/staticcheck
lint: $(STATICCHECK)
	$(STATICCHECK) ./...

# The helm CLI at the SDK version Outpost links (go.mod), for the test that drives a cluster
# with it as users do.
HELM := $(BUILD)/tools/helm
$(HELM): go.mod go.sum
	@mkdir -p $(BUILD)/tools
	go build -trimpath -ldflags "-s -w" -o $(HELM) helm.sh/helm/v3/cmd/helm

integration: build test-images dist $(HELM)
	$(MAKE) --no-print-directory integration-tests
# The integration tests on what `integration` built.
integration-tests:
	OUTPOST_BIN=$(CURDIR)/$(BIN) OUTPOST_TEST_IMAGES=$(CURDIR)/$(BUILD)/test-images OUTPOST_DIST=$(CURDIR)/$(DIST) OUTPOST_HELM=$(CURDIR)/$(HELM) \
		go test -count=1 -v -timeout 80m ./tests/...

# Every test: the unit tests, the arm64 check, then the integration tests. The arm64 cross
# build runs before the cluster tests, not beside them: beside them, three CI runs each had one
# timing-bound test (a joining HA server, an idle server's quiet minute) miss its mark.
test: unit
	$(MAKE) --no-print-directory build test-images dist $(HELM)
	$(MAKE) --no-print-directory arm64-test
	$(MAKE) --no-print-directory integration-tests

# The arm64 binary under qemu-user (Debian's qemu-user-static): --version, check-config's
# table, gpu info --gpu-mock dgxa100. Only the binary: its payload and images are release work
# (dist-arm64, whose binary `make release` checks the same way). qemu-user 7.2 runs the static
# binary; it hangs in a dynamically linked cgo one.
A64_CHECK = $(A64)/outpost-arm64-check
arm64-test: deps-arm64
	@mkdir -p $(A64)
	GOARCH=arm64 CC=$(ARM64_CC) CGO_ENABLED=1 go build -tags $(TAGS) -trimpath -ldflags "$(LDFLAGS)" -o $(A64_CHECK) ./cmd/outpost
	scripts/arm64-check.sh $(A64_CHECK)

# The GPU layer against a real driver (pkg/gpu/hwtest): a small test binary to run on a GPU
# machine as `OUTPOST_REAL_GPU=1 OUTPOST_GPU_HELPER=build/device/outpost-gpu
# build/device/hwtest.test -test.v` (through the GPU helper, as a node reads NVML); it skips elsewhere.
gpu-hwtest:
	@mkdir -p $(BUILD)/device
	go test -c -o $(BUILD)/device/hwtest.test ./pkg/gpu/hwtest
	CGO_ENABLED=1 go build -trimpath -tags netgo,osusergo -ldflags "$(HELPER_LDFLAGS)" -o $(BUILD)/device/outpost-gpu ./cmd/outpost-gpu

# The upstream [Conformance] specs, [Serial] included, on a two-node cluster (a server and an
# agent in network namespaces) with every image they run built here (tests/conformance): no
# registry. Hours on 2 cores, so not part of `make test`. CONFORMANCE_FOCUS, CONFORMANCE_SKIP and
# CONFORMANCE_PROCS narrow it (TestConformance); the report and logs stay in $(CONFORMANCE)/last.
CONFORMANCE ?= /var/cache/outpost-conformance
# Debian packages whose files go into the conformance images (none starts a service), and what
# building busybox from its source package takes
CONFORMANCE_DEBS := curl netcat-openbsd bash dash coreutils grep sed hostname libc-bin \
	base-files bind9-dnsutils bind9-host gcc libc6-dev make patch bzip2 xz-utils
conformance: build
	$(call install_debs,$(CONFORMANCE_DEBS),--no-install-recommends)
	OUT=$(CONFORMANCE) tests/conformance/build.sh
	OUT=$(CONFORMANCE) tests/conformance/images.sh >/dev/null
	OUTPOST_BIN=$(CURDIR)/$(BIN) OUTPOST_CONFORMANCE=$(CONFORMANCE) go test -count=1 -v -timeout 6h -run '^TestConformance$$' ./tests/

# It also saves pprof profiles of the outpost process in build/bench: its heap at idle and its
# CPU during the 50-pod burst (`go tool pprof -top build/bench/burst-cpu.pprof`).
bench: build test-images
	@mkdir -p $(BUILD)/bench
	set -o pipefail; OUTPOST_BIN=$(CURDIR)/$(BIN) OUTPOST_TEST_IMAGES=$(CURDIR)/$(BUILD)/test-images \
		OUTPOST_BENCH_PROFILES=$(CURDIR)/$(BUILD)/bench OUTPOST_BENCH=1 go test -count=1 -run TestBench -v -timeout 30m ./tests/ | grep -v "^=== \|^--- \|^PASS\|^ok"

# contrib/: the service files install.sh writes and the completion scripts, regenerated.
contrib: build
	scripts/contrib-units.sh contrib
	$(BIN) completion bash > contrib/completion/outpost.bash
	$(BIN) completion zsh > contrib/completion/_outpost

# dist/ for this machine's architecture: what install.sh downloads, and the air-gap images.
DIST := dist
dist: build
	@mkdir -p $(DIST)
	cp $(BIN) $(DIST)/outpost-$(GOARCH)
	cd $(DIST) && sha256sum outpost-$(GOARCH) > sha256sum-$(GOARCH).txt
	go run ./scripts/ocimerge -o $(BUILD)/airgap-$(GOARCH).tar $(IMAGE_TARS)
	zstd -q -19 -T0 -f $(BUILD)/airgap-$(GOARCH).tar -o $(DIST)/outpost-airgap-images-$(GOARCH).tar.zst
	cp install.sh $(DIST)/install.sh

# Cross builds for arm64: Debian's aarch64 toolchain and libseccomp for arm64 (multiarch).
ARM64_CC := aarch64-linux-gnu-gcc
A64      := $(BUILD)/arm64
# The outer binary embeds pkg/payload/embedded/assets/GOARCH (assets_GOARCH.go).
A64_ASSETS := pkg/payload/embedded/assets/arm64
# Where dist-arm64 puts the release files; make test keeps them out of dist/, which the
# install tests serve while the cross build runs.
A64_OUT  ?= $(DIST)
deps-arm64:
	@dpkg -s gcc-aarch64-linux-gnu libseccomp-dev:arm64 qemu-user-static >/dev/null 2>&1 || { dpkg --add-architecture arm64 && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-aarch64-linux-gnu libc6-dev-arm64-cross libseccomp-dev:arm64 qemu-user-static; }

dist-arm64: deps-arm64
	@mkdir -p $(A64)/images $(A64)/inner $(A64_OUT)
	GOARCH=arm64 CC=$(ARM64_CC) PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig \
		CONTAINERD_VERSION=$(CONTAINERD_VERSION) RUNC_VERSION=$(RUNC_VERSION) CNI_VERSION=$(CNI_VERSION) CRICTL_VERSION=$(CRICTL_VERSION) \
		scripts/build-payload.sh $(A64)/payload
	GOARCH=arm64 CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o $(A64)/images/pause ./scripts/images/pause
	go run ./scripts/ociimage -arch arm64 -name $(PAUSE_IMAGE) -o $(A64)/images/pause.tar -entrypoint /pause /pause=$(A64)/images/pause
	cd scripts/images/coredns && GOARCH=arm64 CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o ../../../$(A64)/images/coredns .
	go run ./scripts/ociimage -arch arm64 -name $(COREDNS_IMAGE) -o $(A64)/images/coredns.tar -entrypoint /coredns /coredns=$(A64)/images/coredns
	cd scripts/images/local-path && GOARCH=arm64 CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o ../../../$(A64)/images/local-path-provisioner github.com/rancher/local-path-provisioner
	GOARCH=arm64 CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o $(A64)/images/localpath-helper ./scripts/images/localpath-helper
	go run ./scripts/ociimage -arch arm64 -name $(LOCALPATH_IMAGE) -o $(A64)/images/local-path.tar -entrypoint /local-path-provisioner \
		/local-path-provisioner=$(A64)/images/local-path-provisioner /helper=$(A64)/images/localpath-helper
	GOARCH=arm64 CC=$(ARM64_CC) CGO_ENABLED=1 go build -tags $(TAGS) -trimpath -ldflags "$(LDFLAGS)" -o $(A64)/inner/outpost ./cmd/outpost
	scripts/pack-payload.sh $(A64_ASSETS)/payload.tar.zst $(A64)/inner/outpost $(A64)/payload/bin $(A64)/images/pause.tar $(A64)/images/coredns.tar $(A64)/images/local-path.tar
	GOARCH=arm64 CGO_ENABLED=0 go build -trimpath -ldflags "$(OUTER_LDFLAGS)" -o $(A64_OUT)/outpost-arm64 ./cmd/outpost-outer
	cd $(A64_OUT) && sha256sum outpost-arm64 > sha256sum-arm64.txt
	go run ./scripts/ocimerge -o $(A64)/airgap.tar $(A64)/images/pause.tar $(A64)/images/coredns.tar $(A64)/images/local-path.tar
	zstd -q -19 -T0 -f $(A64)/airgap.tar -o $(A64_OUT)/outpost-airgap-images-arm64.tar.zst

release: dist dist-arm64
	scripts/arm64-check.sh --outer $(A64_OUT)/outpost-arm64

clean:
	rm -rf bin $(BUILD) $(DIST) pkg/payload/embedded/assets/*/payload.tar.zst*
