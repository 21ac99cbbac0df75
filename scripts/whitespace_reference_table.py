# Prints the reference reader's verdict (read_text().strip().splitlines(), empty lines
# skipped, json.loads per line) for each padding character and position; the table in
# cfa-audit/tests/trust_whitespace.rs must agree. Needs only Python 3 (no reference package).
import json, sys
lines=open(sys.argv[1] if len(sys.argv) > 1 else '../shared/conformance/audit/chain_small.jsonl').read().split('\n')[:3]
def ref(text):
    try:
        for l in text.strip().splitlines():
            if not l: continue
            json.loads(l)
        return 'intact'
    except Exception: return 'error'
chars={'space':' ','tab':'\t','nbsp':'\xa0','ideo':'\u3000','us':'\x1f','enq':'\u2000','nnbsp':'\u202f','bom':'\ufeff','ff':'\x0c','vt':'\x0b','ls':'\u2028','ps':'\u2029','fs':'\x1c','gs':'\x1d','rs':'\x1e','nel':'\x85','cr':'\r','zwsp':'\u200b'}
a,b,c=lines
for n,ch in chars.items():
    r={
     'lead':ref(f"{a}\n{ch}{b}\n{c}\n"),
     'trail':ref(f"{a}\n{b}{ch}\n{c}\n"),
     'line':ref(f"{a}\n{ch}\n{b}\n{c}\n"),
     'file_lead':ref(f"{ch}{a}\n{b}\n{c}\n"),
     'file_trail':ref(f"{a}\n{b}\n{c}{ch}\n"),
     'file_line':ref(f"{ch}\n{a}\n{b}\n{c}\n{ch}\n"),
    }
    print(n, r)
