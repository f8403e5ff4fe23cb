import { describe, expect, it } from "vitest";
import { expandExecArgv, parseEnvironmentFile, parseUnitFile } from "../../src/unit/index.js";

describe("EnvironmentFile= syntax (systemd)", () => {
  it.each<[string, string, Record<string, string>]>([
    ["plain pairs", "A=1\nB=two words\n", { A: "1", B: "two words" }],
    ["surrounding whitespace dropped", "  A =  1  \n", { A: "1" }],
    ["comments and blank lines", "# c\n; c\n\nA=1\n   # indented\n", { A: "1" }],
    ["'#' later in a value is kept", "A=1 # not a comment\n", { A: "1 # not a comment" }],
    ["double quotes", 'A="a  b"\n', { A: "a  b" }],
    ["double-quote escapes", 'A="say \\"hi\\" \\$HOME \\\\ \\n"\n', { A: 'say "hi" $HOME \\ \\n' }],
    ["single quotes are literal", "A='a \\n \"b\"'\n", { A: 'a \\n "b"' }],
    ["quotes concatenate", "A=x\"y z\"'w'\n", { A: "xy zw" }],
    ["unquoted backslash escapes", "A=a\\ b\\#\n", { A: "a b#" }],
    ["continuation", "A=one \\\ntwo\nB=2\n", { A: "one two", B: "2" }],
    ["multi-line double quotes", 'A="l1\nl2"\nB=2\n', { A: "l1\nl2", B: "2" }],
    ["CRLF", "A=1\r\nB=2\r\n", { A: "1", B: "2" }],
    ["empty value", "A=\n", { A: "" }],
    ["later wins", "A=1\nA=2\n", { A: "2" }],
    ["value with '='", "URL=http://x/?a=b\n", { URL: "http://x/?a=b" }],
    ["no final newline", "A=1", { A: "1" }],
  ])("%s", (_what, text, env) => {
    expect(parseEnvironmentFile(text).env).toEqual(env);
  });

  it("reports lines systemd skips, with their number", () => {
    const r = parseEnvironmentFile("A=1\njunk\n1BAD=x\nexport B=2\nC=3\n");
    expect(r.env).toEqual({ A: "1", C: "3" });
    expect(r.skipped).toEqual([
      { line: 2, text: "junk" },
      { line: 3, text: "1BAD" },
      { line: 4, text: "export B" },
    ]);
  });
});

describe("$VAR substitution in exec lines (systemd)", () => {
  const env = { HOME: "/home/core", OPTS: "-a  -b\t-c", EMPTY: "", PORT: "8080" };
  const argv = (line: string) => parseUnitFile("a", `[Service]\nExecStart=${line}\n`).service.execStart[0]!;

  it.each<[string, string[]]>([
    ["/bin/echo ${HOME}", ["/bin/echo", "/home/core"]],
    ["/bin/echo x${HOME}y", ["/bin/echo", "x/home/corey"]],
    ["/bin/echo $HOME", ["/bin/echo", "/home/core"]],
    ["/bin/run $OPTS end", ["/bin/run", "-a", "-b", "-c", "end"]],
    ["/bin/run ${OPTS}", ["/bin/run", "-a  -b\t-c"]],
    ["/bin/run $EMPTY end", ["/bin/run", "end"]],
    ["/bin/run $UNSET end", ["/bin/run", "end"]],
    ["/bin/run ${UNSET}", ["/bin/run", ""]],
    ["/bin/run x$HOME", ["/bin/run", "x$HOME"]],
    ["/bin/run $$HOME", ["/bin/run", "$HOME"]],
    ["/bin/run --port=${PORT}", ["/bin/run", "--port=8080"]],
    [`/bin/sh -c "echo $HOME"`, ["/bin/sh", "-c", "echo $HOME"]],
    [":/bin/echo ${HOME} $HOME", ["/bin/echo", "${HOME}", "$HOME"]],
  ])("%s", (line, want) => {
    expect(expandExecArgv(argv(line), env)).toEqual(want);
  });
});
