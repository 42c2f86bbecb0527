# scripts/setup.sh and reference/setup.sh choose apt-get (Debian, Ubuntu) or dnf (Fedora, Fedora
# Asahi Remix and other derivatives) from os-release, with the right package names. Runs them with
# a fake os-release (DSOCR_OS_RELEASE) and fake package tools first on PATH (dpkg-query and rpm
# answer "not installed", or "installed"; apt-get, dnf and sudo only log their arguments), so
# nothing is installed and no network is used. Needs no device (lib.sh's arguments are unused).
source "$(dirname "$0")/lib.sh" "$@"

src=$(cd "$(dirname "$0")/../.." && pwd -P)
BASH_BIN=$(command -v bash)

bash -n "$src/scripts/setup.sh" && pass "scripts/setup.sh parses (bash -n)" || fail "scripts/setup.sh: bash -n"
bash -n "$src/reference/setup.sh" && pass "reference/setup.sh parses (bash -n)" || fail "reference/setup.sh: bash -n"

fake=$WORK/bin
mkdir -p "$fake"
log=$WORK/installer.log
for tool in apt-get dnf sudo; do
  printf '#!/bin/sh\necho "%s $*" >> "%s"\n' "$tool" "$log" >"$fake/$tool"
done
# INSTALLED=1: every package is installed; otherwise none is.
printf '#!/bin/sh\n[ "$INSTALLED" = 1 ] && printf "install ok installed"\nexit 0\n' >"$fake/dpkg-query"
printf '#!/bin/sh\n[ "$INSTALLED" = 1 ]\n' >"$fake/rpm"
chmod +x "$fake"/*

osr() {  # osr NAME LINES...: writes $WORK/NAME.os-release
  local f=$WORK/$1.os-release
  shift
  printf '%s\n' "$@" >"$f"
}
osr debian12 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"' 'ID=debian' 'VERSION_ID="12"'
osr ubuntu 'NAME="Ubuntu"' 'ID=ubuntu' 'ID_LIKE=debian' 'VERSION_ID="24.04"'
osr fedora 'NAME="Fedora Linux"' 'ID=fedora' 'VERSION_ID=42'
osr asahi 'NAME="Fedora Linux Asahi Remix"' 'ID="fedora-asahi-remix"' 'ID_LIKE="fedora"' 'VERSION_ID=42'
osr rocky 'NAME="Rocky Linux"' 'ID="rocky"' 'ID_LIKE="rhel centos fedora"'
osr arch 'NAME="Arch Linux"' 'ID=arch'

# setup SCRIPT OS [ENV...]: runs SCRIPT with that os-release; output in $WORK/out, status in $rc.
setup() {
  local script=$1 os=$2
  shift 2
  : >"$log"
  env PATH="$fake:$PATH" DSOCR_OS_RELEASE="$WORK/$os.os-release" "$@" "$BASH_BIN" "$src/$script" >"$WORK/out" 2>&1
  rc=$?
}
expect_absent() {  # NAME FILE PATTERN
  if grep -Eq -- "$3" "$2"; then fail "$1 (/$3/ found:)"; sed 's/^/    | /' "$2" | head -20; else pass "$1"; fi
}

# --- scripts/setup.sh, dry runs
for os in debian12 ubuntu; do
  setup scripts/setup.sh $os DSOCR_SETUP_DRY_RUN=1
  expect_rc "$os: dry run" 0 "$rc"
  expect_contains "$os: debian family" "$WORK/out" '^setup: family debian '
  expect_contains "$os: apt-get update" "$WORK/out" 'would run: (sudo )?apt-get update -qq$'
  expect_contains "$os: apt-get install with Debian names" "$WORK/out" \
    'would run: (sudo )?apt-get install -y -qq --no-install-recommends cmake g\+\+ make pkg-config ocl-icd-opencl-dev opencl-c-headers opencl-clhpp-headers libclblast-dev .* libpoppler-cpp-dev libgtest-dev libcpp-httplib-dev .* pocl-opencl-icd mesa-opencl-icd$'
  expect_absent "$os: no dnf" "$WORK/out" 'dnf'
  expect_absent "$os: the dry run ran no installer" "$log" '.'
done
for os in fedora asahi rocky; do
  setup scripts/setup.sh $os DSOCR_SETUP_DRY_RUN=1
  expect_rc "$os: dry run" 0 "$rc"
  expect_contains "$os: fedora family" "$WORK/out" '^setup: family fedora '
  expect_contains "$os: dnf install with Fedora names" "$WORK/out" \
    'would run: (sudo )?dnf install -y --setopt=install_weak_deps=False cmake gcc-c\+\+ make pkgconf-pkg-config ocl-icd-devel opencl-headers clblast-devel hdf5-devel fmt-devel libpng-devel libjpeg-turbo-devel json-devel pcre2-devel poppler-cpp-devel gtest-devel cpp-httplib-devel dejavu-sans-fonts dejavu-serif-fonts dejavu-sans-mono-fonts liberation-sans-fonts liberation-serif-fonts liberation-mono-fonts gnu-free-sans-fonts gnu-free-serif-fonts gnu-free-mono-fonts words pocl mesa-libOpenCL$'
  expect_absent "$os: no apt" "$WORK/out" 'apt-get|dpkg'
  expect_absent "$os: the dry run ran no installer" "$log" '.'
done

# --- scripts/setup.sh, real runs against the fake tools
setup scripts/setup.sh debian12 INSTALLED=1
expect_rc "debian, all installed" 0 "$rc"
expect_contains "debian, all installed: says so" "$WORK/out" '^setup: all packages present$'
expect_absent "debian, all installed: no installer run" "$log" '.'
setup scripts/setup.sh asahi INSTALLED=1
expect_contains "asahi, all installed: says so (rpm queried)" "$WORK/out" '^setup: all packages present$'
setup scripts/setup.sh asahi
expect_rc "asahi, nothing installed: installs" 0 "$rc"
expect_contains "asahi: dnf ran with the Fedora names" "$log" \
  '^(sudo )?dnf install -y --setopt=install_weak_deps=False cmake gcc-c\+\+ .* clblast-devel .* mesa-libOpenCL$'
setup scripts/setup.sh debian12
expect_contains "debian, nothing installed: apt-get ran" "$log" \
  '^(sudo )?apt-get install -y -qq --no-install-recommends cmake .* libjpeg62-turbo-dev .* mesa-opencl-icd$'

# --- unknown distribution, no package manager: a clear refusal
minbin=$WORK/minbin
mkdir -p "$minbin"
for t in sed head tr id; do ln -sf "$(command -v $t)" "$minbin/$t"; done
env PATH="$minbin" DSOCR_OS_RELEASE="$WORK/arch.os-release" "$BASH_BIN" "$src/scripts/setup.sh" >"$WORK/out" 2>&1
expect_rc "arch without apt-get/dnf: refused" 1 $?
expect_contains "arch: names what to install by hand" "$WORK/out" 'unknown distribution .*ID=arch.*CLBlast'

# --- reference/setup.sh, dry runs
setup reference/setup.sh debian12 DSOCR_SETUP_DRY_RUN=1
expect_rc "reference, debian: dry run" 0 "$rc"
expect_contains "reference, debian: Debian's torch" "$WORK/out" \
  'would run: (sudo )?apt-get install -y -qq --no-install-recommends python3 python3-venv python3-pip python3-torch python3-numpy python3-h5py python3-pil python3-pytest python3-matplotlib$'
expect_absent "reference, debian: no torch from PyPI" "$WORK/out" 'pip install .*torch'
setup reference/setup.sh asahi DSOCR_SETUP_DRY_RUN=1
expect_rc "reference, asahi: dry run" 0 "$rc"
expect_contains "reference, asahi: Fedora names" "$WORK/out" \
  'would run: (sudo )?dnf install -y --setopt=install_weak_deps=False python3 python3-pip python3-numpy python3-h5py python3-pillow python3-pytest python3-matplotlib$'
expect_contains "reference, asahi: torch from PyPI into the venv" "$WORK/out" \
  'would run: .*/reference/.venv/bin/python -m pip install -q --disable-pip-version-check torch$'
expect_absent "reference, asahi: no apt" "$WORK/out" 'apt-get|python3-torch'
expect_absent "reference, asahi: the dry run ran no installer" "$log" '.'
finish
