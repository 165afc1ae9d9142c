import { describe, expect, it } from "vitest";
import { renderPanel } from "./panel";
import type { DetailPayload } from "./types";

const link = (id: string, name: string) => ({ id, type: "function", name, qname: `billing.${name}`, path: "billing/p.py", line: 3, sites: [37] });

describe("renderPanel", () => {
  const d: DetailPayload = {
    node: {
      id: "function:1", type: "function", name: "charge", qname: "billing.payments.charge", path: "billing/payments.py",
      line: 15, end_line: 24, lang: "python", signature: "def charge(customer, amount, currency=\"USD\"):",
      doc: "Charge a card.", summary: "Charges a customer's <card>.", module: "module:1",
      callers: [link("function:2", "try_charge")], callees: [link("function:3", "provider_token")],
      relations: [{ kind: "throws", direction: "out", links: [{ ...link("class:4", "CardDeclined"), type: "class" }] }],
      meta: {},
    },
    excerpt: { start: 15, text: "def charge(customer):\n    return 1", truncated: false, redacted: 1 },
  };
  const html = renderPanel(d);
  const doc = new DOMParser().parseFromString(`<div>${html}</div>`, "text/html");

  it("lists callers and callees as links to their nodes, with call sites", () => {
    const callers = [...doc.querySelectorAll(".callers a")].map((a) => a.getAttribute("data-node"));
    expect(callers).toEqual(["function:2"]);
    expect(doc.querySelector(".callers .where")!.textContent).toBe("billing/p.py:37");
    expect(doc.querySelector(".callees a")!.textContent).toContain("provider_token");
    expect(doc.querySelector(".r-throws-out h4")!.textContent).toContain("Raises");
  });

  it("escapes text and numbers source lines", () => {
    expect(doc.querySelector(".summary")!.textContent).toBe("Charges a customer's <card>.");
    expect(doc.querySelector(".summary")!.innerHTML).toContain("&lt;card&gt;");
    expect([...doc.querySelectorAll(".source .ln")].map((e) => e.textContent)).toEqual(["15", "16"]);
    expect(doc.querySelector(".source h4")!.textContent).toContain("1 secret(s) redacted");
    expect(doc.querySelector(".loc")!.textContent).toBe("billing/payments.py:15 · python");
  });

  it("sets code spans of summaries in monospace, still escaped", () => {
    const d2 = { ...d, node: { ...d.node, summary: "Calls `a<b>` and `c`." } };
    const doc2 = new DOMParser().parseFromString(`<div>${renderPanel(d2)}</div>`, "text/html");
    expect([...doc2.querySelectorAll(".summary code")].map((c) => c.textContent)).toEqual(["a<b>", "c"]);
  });

  it("caps long neighbour lists", () => {
    const many = { ...d, node: { ...d.node, callers: Array.from({ length: 50 }, (_, i) => link(`function:x${i}`, `f${i}`)) } };
    const doc2 = new DOMParser().parseFromString(`<div>${renderPanel(many)}</div>`, "text/html");
    expect(doc2.querySelectorAll(".callers a")).toHaveLength(40);
    expect(doc2.querySelector(".callers .more")!.textContent).toBe("and 10 more");
    expect(doc2.querySelector(".callers h4 .n")!.textContent).toBe("50");
  });
});
