"""
The Dockerfile stays in step with the Makefile, without a Docker engine.

No Docker engine runs here, so the image is never built in CI. Instead these checks read
the files: the image installs with exactly ``make install`` (the target ``make devnet``
and ``make test`` use), after copying every file that target's recipes read (parsed from
the Makefile, so a prerequisite added there and not here fails), every package
setup.cfg's ``packages.find`` installs, and the directories the commands read at run
time; the base image's Python satisfies ``python_requires``; the console script is the
entry point; and ``.dockerignore`` keeps the machine's own installs and data out
without hiding anything the image copies. Each check is also run on a broken variant,
to show it can fail.
"""

import configparser
import fnmatch
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[2]

INSTALL_TARGET = "install"
"""The Makefile target that installs everything (INTERFACE.md: `make devnet`, `make test`)."""

RUNTIME_PATHS = ("contracts", "configs", "examples")
"""What the commands read from the checkout at run time: the committed contract artifacts
(``node.l1.artifacts``, ``ratchet deploy``), ``configs/devnet.toml`` and its markets
(``ratchet devnet``), and the examples the README runs inside the container."""

MUST_IGNORE = (".venv", "node_modules", "data", ".git")
"""Never in the build context: the machine's own installs, run-time data, history."""

SHELL_TOOLS = frozenset({"test", "touch", "mkdir", "rm", "cp", "echo", "cd", "true"})
"""Commands of a recipe that any base image has."""

APT_PACKAGES_FOR = {"make": {"make"}, "npm": {"npm", "nodejs"}}
"""Debian packages a recipe's command needs (npm runs Node.js install scripts)."""


# the Makefile ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    target: str
    prerequisites: tuple[str, ...]
    recipe: tuple[str, ...]


@dataclass(frozen=True)
class Makefile:
    variables: dict[str, str]
    rules: dict[str, Rule]

    def expand(self, text: str) -> str:
        """``text`` with every ``$(VAR)`` replaced, recursively."""
        for _ in range(20):
            expanded = re.sub(r"\$\((\w+)\)", lambda m: self.variables.get(m.group(1), ""), text)
            if expanded == text:
                return expanded
            text = expanded
        raise AssertionError(f"recursive variable in {text!r}")

    def rule(self, target: str) -> Rule:
        return self.rules[target]

    def install_inputs(self, target: str = INSTALL_TARGET) -> set[str]:
        """The files the recipes of ``target`` and its prerequisite targets read: every
        prerequisite that is not itself a target, recursively."""
        found: set[str] = set()
        pending, seen = [target], set()
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            for prerequisite in self.rule(name).prerequisites:
                if prerequisite in self.rules:
                    pending.append(prerequisite)
                else:
                    found.add(prerequisite)
        return found

    def install_commands(self, target: str = INSTALL_TARGET) -> set[str]:
        """The first word of every command in the recipes of ``target`` and the targets it
        needs (recipe lines split at ``&&``, ``||``, ``;`` and ``|``)."""
        commands: set[str] = set()
        pending, seen = [target], set()
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            rule = self.rule(name)
            pending.extend(p for p in rule.prerequisites if p in self.rules)
            for line in rule.recipe:
                for command in re.split(r"&&|\|\||;|\|", self.expand(line).lstrip("@-")):
                    words = shlex.split(command)
                    if words:
                        commands.add(words[0])
        return commands


def parse_makefile(text: str) -> Makefile:
    """The variables and explicit rules of a (simple) Makefile, names expanded."""
    variables: dict[str, str] = {}
    raw_rules: list[tuple[str, str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("\t"):
            if raw_rules:
                raw_rules[-1][2].append(line[1:])
            continue
        stripped = line.split("#", 1)[0].rstrip()
        if not stripped:
            continue
        assignment = re.match(r"^([A-Za-z_]\w*)\s*(:=|\?=|=)\s*(.*)$", stripped)
        if assignment:
            variables[assignment.group(1)] = assignment.group(3).strip()
            continue
        rule = re.match(r"^([^:=]+):(?!=)\s*(.*)$", stripped)
        if rule:
            raw_rules.append((rule.group(1).strip(), rule.group(2).strip(), []))
    makefile = Makefile(variables, {})
    for targets, prerequisites, recipe in raw_rules:
        for target in makefile.expand(targets).split():
            makefile.rules[target] = Rule(
                target, tuple(makefile.expand(prerequisites).split()), tuple(recipe)
            )
    return makefile


# the Dockerfile --------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    workdir: str
    """The working directory in effect when the instruction runs."""


def parse_dockerfile(text: str) -> list[Instruction]:
    """The instructions, continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    workdir = "/"
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, arguments = full.partition(" ")
        keyword = keyword.upper()
        arguments = " ".join(arguments.split())
        if keyword == "WORKDIR":
            workdir = str(PurePosixPath(workdir) / arguments)
        instructions.append(Instruction(keyword, arguments, workdir))
    return instructions


def exec_form(arguments: str) -> list[str]:
    """A JSON-array argument (``ENTRYPOINT ["ratchet"]``), or the shell form split."""
    if arguments.startswith("["):
        value = json.loads(arguments)
        assert isinstance(value, list)
        return [str(v) for v in value]
    return shlex.split(arguments)


def copies(instructions: list[Instruction]) -> list[tuple[int, str, str]]:
    """``(instruction number, source, where it lands)`` for every path a COPY brings from
    the build context. As in Docker, a directory's contents land in the destination; a
    file lands in it if it is a directory (ends with ``/``, or several sources)."""
    found = []
    for number, instruction in enumerate(instructions):
        if instruction.keyword != "COPY":
            continue
        words = [w for w in exec_form(instruction.arguments) if not w.startswith("--")]
        *sources, destination = words
        into_directory = destination.endswith(("/", "/.")) or destination == "." or len(sources) > 1
        target = PurePosixPath(instruction.workdir) / destination
        for source in sources:
            name = str(PurePosixPath(source))
            landing = target
            if not (ROOT / name).is_dir() and into_directory:
                landing = target / PurePosixPath(name).name
            found.append((number, name, str(landing)))
    return found


def shell_commands(instruction: Instruction) -> list[str]:
    """The commands of a RUN instruction, split at ``&&``, ``||`` and ``;``."""
    if instruction.keyword != "RUN":
        return []
    return [c.strip() for c in re.split(r"&&|\|\||;", instruction.arguments) if c.strip()]


def install_runs(instructions: list[Instruction]) -> list[int]:
    """The numbers of the RUN instructions that run ``make``."""
    return [
        n
        for n, instruction in enumerate(instructions)
        if any(c.split()[0] == "make" for c in shell_commands(instruction))
    ]


INSTALLERS = re.compile(r"^(pip3?|npm|npx|yarn|pnpm)\b|-m (pip|venv)\b")
"""A shell command that installs Python or npm packages (apt-get's system tools aside)."""


def other_installs(instructions: list[Instruction]) -> list[str]:
    """The commands of RUN instructions that install packages outside ``make``."""
    return [
        command
        for instruction in instructions
        for command in shell_commands(instruction)
        if INSTALLERS.search(command)
    ]


def apt_packages(instructions: list[Instruction]) -> set[str]:
    packages: set[str] = set()
    for instruction in instructions:
        for command in shell_commands(instruction):
            words = command.split()
            if words[:2] == ["apt-get", "install"]:
                packages.update(w for w in words[2:] if not w.startswith("-"))
    return packages


def missing_copies(
    instructions: list[Instruction], needed: set[str], home: str, before: int | None = None
) -> set[str]:
    """The paths of ``needed`` that no COPY (before instruction number ``before``, if
    given) brings to the same place under ``home``, the directory the Makefile runs in."""
    copied = [
        (source, landing)
        for number, source, landing in copies(instructions)
        if before is None or number < before
    ]
    missing = set()
    for path in needed:
        if not any(
            (source in (".", path) or path.startswith(source + "/"))
            and landing == str(PurePosixPath(home) / source)
            for source, landing in copied
        ):
            missing.add(path)
    return missing


# setup.cfg and .dockerignore ------------------------------------------------------------


def setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return parser


def package_directories(parser: configparser.ConfigParser) -> set[str]:
    """The top-level directories of the packages ``packages.find`` includes."""
    include = parser.get("options.packages.find", "include", fallback="")
    return {line.strip().split(".")[0] for line in include.splitlines() if line.strip()}


def files_setup_reads(parser: configparser.ConfigParser) -> set[str]:
    """Files named by ``file:`` directives (the README as long_description)."""
    found = set()
    for section in parser.sections():
        for _, value in parser.items(section):
            for match in re.finditer(r"file:\s*([^\s,]+)", value):
                found.add(match.group(1))
    return found


def ignore_patterns(text: str) -> list[str]:
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``path`` out of the context: a pattern matching the path or
    one of its parent directories; ``**/`` also matches at the root; ``!`` re-includes."""
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw.lstrip("!").strip("/")
        variants = {pattern, pattern.removeprefix("**/")}
        if any(fnmatch.fnmatchcase(c, v) for c in candidates for v in variants):
            result = not negate
    return result


# the checks ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def makefile() -> Makefile:
    return parse_makefile((ROOT / "Makefile").read_text())


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse_dockerfile((ROOT / "Dockerfile").read_text())


def install_needs(makefile: Makefile) -> set[str]:
    """Everything ``make install`` reads from the checkout."""
    parser = setup_cfg()
    return (
        {"Makefile"}
        | makefile.install_inputs()
        | package_directories(parser)
        | files_setup_reads(parser)
    )


def test_install_needs_are_parsed_from_the_makefile(makefile: Makefile) -> None:
    needs = install_needs(makefile)
    # not vacuous: the stamps' prerequisites and the packages are all there
    assert {"setup.cfg", "pyproject.toml", "package.json", "package-lock.json"} <= needs
    assert {"node", "challenger", "README.md"} <= needs
    for path in needs:
        assert (ROOT / path).exists(), f"{path} is an install input but not in the checkout"


def test_the_image_installs_with_make_install_only(
    dockerfile: list[Instruction], makefile: Makefile
) -> None:
    runs = install_runs(dockerfile)
    assert [dockerfile[n].arguments for n in runs] == [f"make {INSTALL_TARGET}"]
    assert INSTALL_TARGET in makefile.rules
    assert other_installs(dockerfile) == [], f"install steps outside `make {INSTALL_TARGET}`"


def test_every_install_input_is_copied_before_make_install(
    dockerfile: list[Instruction], makefile: Makefile
) -> None:
    (run,) = install_runs(dockerfile)
    home = dockerfile[run].workdir
    assert home != "/", "make install runs in the checkout's own WORKDIR"
    assert missing_copies(dockerfile, install_needs(makefile), home, before=run) == set()


def test_the_runtime_directories_are_copied(dockerfile: list[Instruction]) -> None:
    for path in RUNTIME_PATHS:
        assert (ROOT / path).is_dir()
    (run,) = install_runs(dockerfile)
    # the package runs from where it was installed (editable): node.l1.REPO_ROOT
    assert missing_copies(dockerfile, set(RUNTIME_PATHS), dockerfile[run].workdir) == set()
    assert (ROOT / "contracts" / "artifacts" / "Rollup.json").exists()


def test_the_tools_the_recipes_run_are_installed(
    dockerfile: list[Instruction], makefile: Makefile
) -> None:
    commands = makefile.install_commands() | {"make"}
    installed = apt_packages(dockerfile)
    python = makefile.expand("$(PYTHON)")
    for command in commands - SHELL_TOOLS:
        if command == python or command.startswith(makefile.expand("$(VENV)")):
            continue  # the base image's Python, then the virtualenv it makes
        needed = APT_PACKAGES_FOR.get(command)
        assert needed is not None, f"the install recipes run {command!r}: install it"
        assert needed <= installed, f"{command} needs the Debian packages {needed}"


def test_the_base_image_python_satisfies_python_requires(
    dockerfile: list[Instruction],
) -> None:
    (base,) = [i.arguments for i in dockerfile if i.keyword == "FROM"]
    match = re.fullmatch(r"python:(\d+\.\d+)(?:\.\d+)?(?:-[\w.-]+)?", base)
    assert match, f"the base image is not an official python image: {base}"
    required = SpecifierSet(setup_cfg().get("options", "python_requires"))
    assert required.contains(match.group(1)), f"{base} does not satisfy {required}"


def test_the_entry_point_is_the_console_script_on_the_path(
    dockerfile: list[Instruction], makefile: Makefile
) -> None:
    (entrypoint,) = [i for i in dockerfile if i.keyword == "ENTRYPOINT"]
    assert exec_form(entrypoint.arguments) == ["ratchet"]
    scripts = setup_cfg().get("options.entry_points", "console_scripts")
    assert re.search(r"^\s*ratchet\s*=", scripts, re.MULTILINE)
    (run,) = install_runs(dockerfile)
    venv_bin = str(PurePosixPath(dockerfile[run].workdir) / makefile.expand("$(VENV)") / "bin")
    environment = " ".join(i.arguments for i in dockerfile if i.keyword == "ENV")
    assert re.search(rf"PATH=\"?{re.escape(venv_bin)}:", environment), (
        f"PATH must start with {venv_bin}, where `make {INSTALL_TARGET}` puts `ratchet`"
    )


def test_data_is_a_volume_and_the_rpc_port_is_exposed(dockerfile: list[Instruction]) -> None:
    volumes = [v for i in dockerfile if i.keyword == "VOLUME" for v in exec_form(i.arguments)]
    assert "/data" in volumes
    exposed = {p for i in dockerfile if i.keyword == "EXPOSE" for p in i.arguments.split()}
    devnet = (ROOT / "configs" / "devnet.toml").read_text()
    port = re.search(r"^\[rpc\][^\[]*?^port\s*=\s*(\d+)", devnet, re.MULTILINE | re.DOTALL)
    assert port is not None
    assert port.group(1) in exposed


def test_the_header_documents_a_run_command_per_daemon() -> None:
    text = (ROOT / "Dockerfile").read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    readme = (ROOT / "README.md").read_text()
    for command in ("devnet", "sequencer", "watch"):
        pattern = rf"docker run [^\n]*(?:\\\n[^\n]*)*\bratchet {command}\b"
        assert re.search(pattern, header.replace("#   ", "").replace("#", "")), command
        assert re.search(pattern, readme), f"README.md documents no `docker run ... {command}`"


def test_dockerignore_keeps_installs_and_data_out_and_nothing_needed(
    makefile: Makefile,
) -> None:
    patterns = ignore_patterns((ROOT / ".dockerignore").read_text())
    for path in MUST_IGNORE:
        assert ignored(path, patterns), f".dockerignore must exclude {path}"
        assert ignored(f"{path}/some/file", patterns)
    for path in sorted(install_needs(makefile) | set(RUNTIME_PATHS)):
        top = ROOT / path
        files = [top] if top.is_file() else [p for p in top.rglob("*") if p.is_file()]
        for file in files:
            relative = file.relative_to(ROOT).as_posix()
            if "__pycache__" in relative:
                continue
            assert not ignored(relative, patterns), f".dockerignore hides {relative}"


# each check can fail ----------------------------------------------------------------------


def test_invalid_a_new_install_prerequisite_not_copied(dockerfile: list[Instruction]) -> None:
    text = (ROOT / "Makefile").read_text()
    broken = re.sub(
        r"^(\$\(PY_STAMP\):.*)$", r"\1 requirements-extra.txt", text, count=1, flags=re.M
    )
    assert broken != text
    (run,) = install_runs(dockerfile)
    needs = install_needs(parse_makefile(broken))
    home = dockerfile[run].workdir
    assert missing_copies(dockerfile, needs, home, before=run) == {"requirements-extra.txt"}


def test_invalid_a_package_copied_after_make_install(makefile: Makefile) -> None:
    text = (ROOT / "Dockerfile").read_text()
    broken = text.replace("COPY challenger ./challenger\n", "").replace(
        "COPY configs ./configs\n", "COPY configs ./configs\nCOPY challenger ./challenger\n"
    )
    assert broken != text
    instructions = parse_dockerfile(broken)
    (run,) = install_runs(instructions)
    needs, home = install_needs(makefile), instructions[run].workdir
    assert missing_copies(instructions, needs, home, before=run) == {"challenger"}
    assert missing_copies(instructions, needs, home) == set()


def test_invalid_copied_to_the_wrong_place() -> None:
    def missing(dockerfile: str) -> set[str]:
        instructions = parse_dockerfile(f"FROM python:3.11\nWORKDIR /app\n{dockerfile}\n")
        return missing_copies(instructions, {"node", "Makefile"}, "/app")

    assert missing("COPY node ./src\nCOPY Makefile ./") == {"node"}
    assert missing("COPY node Makefile ./") == {"node"}  # a directory's contents, in /app
    assert missing("COPY node/ ./node/\nCOPY Makefile ./Make") == {"Makefile"}
    assert missing("COPY node/ ./node/\nCOPY Makefile .") == set()
    assert missing("COPY . .") == set()


def test_invalid_an_install_step_beside_make() -> None:
    for step in ("pip install web3", "python3 -m pip install -e .", "npm ci", "npx solc"):
        broken = parse_dockerfile(f"FROM python:3.11\nRUN make install && {step}\n")
        assert other_installs(broken) == [step]


def test_invalid_an_old_python_or_a_missing_npm() -> None:
    required = SpecifierSet(setup_cfg().get("options", "python_requires"))
    assert not required.contains("3.10")
    broken = parse_dockerfile(
        "FROM python:3.11\nRUN apt-get update && apt-get install --yes make nodejs\n"
    )
    assert not APT_PACKAGES_FOR["npm"] <= apt_packages(broken)


def test_invalid_a_dockerignore_that_hides_sources_or_keeps_installs() -> None:
    assert ignored("node/cli.py", ["node"])
    assert ignored("contracts/artifacts/Rollup.json", ["**/*.json"])
    assert ignored("README.md", ["*.md"])
    assert not ignored("node_modules/x", [".venv", "data"])
    assert not ignored("node/cli.py", ["node", "!node"])
