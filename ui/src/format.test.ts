import { describe, expect, it } from "vitest";
import { ago, baseName, count, dropTarget, duration, escapeHtml, eta, stageName } from "./format";

describe("format", () => {
  it("durations", () => {
    expect(duration(250)).toBe("250 ms");
    expect(duration(4200)).toBe("4.2 s");
    expect(duration(75_000)).toBe("1 min 15 s");
    expect(duration(-1)).toBe("–");
  });
  it("eta is unknown without a total or a rate", () => {
    expect(eta(10, 100, 9)).toBe(10);
    expect(eta(10, null, 9)).toBeNull();
    expect(eta(10, 100, 0)).toBeNull();
    expect(eta(100, 100, 5)).toBeNull();
  });
  it("counts and times", () => {
    expect(count(999)).toBe("999");
    expect(count(1234)).toBe("1.2k");
    expect(count(45_600)).toBe("46k");
    expect(ago(0, 1)).toBe("never");
    expect(ago(1000, 11_000)).toBe("just now");
    expect(ago(0 + 1, 7_200_001)).toBe("2 h ago");
    expect(stageName("parse")).toBe("Parsing");
    expect(stageName("other")).toBe("other");
  });
  it("drops take exactly one path", () => {
    expect(dropTarget(["/a/b"])).toEqual({ path: "/a/b" });
    expect("error" in dropTarget([])).toBe(true);
    expect(dropTarget(["/a", "/b"])).toEqual({ error: "Drop one repository folder at a time (got 2 items)." });
    expect(baseName("/home/me/repo/")).toBe("repo");
  });
  it("escapes html", () => {
    expect(escapeHtml(`<a href="x">&'`)).toBe("&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
  });
});
