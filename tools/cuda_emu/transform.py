# tools/cuda_emu: turns a .cu file into host C++ for the emulator. `k<<<grid, block, smem, stream>>>(args)`
# becomes emu_launch(key, emu_cfg(grid, block, smem, stream), [=](auto... a) { k(a...); }, args): the
# arguments are evaluated at the launch, as CUDA does (key = the kernel's address, for the shared-memory
# opt-in check), and `[extern] __shared__ T a[N]` (or `T x`) becomes a
# pointer (reference) into the block's dynamic / static shared memory. Usage: transform.py in.cu out.cpp
import re, sys
src = open(sys.argv[1]).read()

def shared(m):
    """One `[extern] __shared__ [__align__(n)] T a[N], b[M];` (or `T x;`) declaration -> pointers / references
    into the block's shared memory. Each thread runs the declarations in the same order, so all get the same
    addresses (emu_static_smem hands out consecutive 16-byte-aligned pieces)."""
    ext, body = m.group(1), m.group(2)
    parts = [p.strip() for p in body.split(',')]
    first = re.match(r'^(.*?)\s*\b(\w+)\s*(\[[^\]]*\])?$', parts[0])
    assert first, body
    typ = first.group(1).strip()
    decls = [(first.group(2), first.group(3))]
    for p in parts[1:]:
        d = re.match(r'^(\w+)\s*(\[[^\]]*\])?$', p)
        assert d, body
        decls.append((d.group(1), d.group(2)))
    out = []
    for name, dim in decls:
        if ext:
            assert dim == '[]', body
            out.append('%s *%s = (%s *)emu_dyn_smem();' % (typ, name, typ))
        elif dim:
            out.append('%s *%s = (%s *)emu_static_smem(sizeof(%s) * (%s));' % (typ, name, typ, typ, dim[1:-1]))
        else:
            out.append('%s &%s = *(%s *)emu_static_smem(sizeof(%s));' % (typ, name, typ, typ))
    return ' '.join(out)
src = re.sub(r'(extern\s+)?__shared__\s+(?:__align__\(\d+\)\s+)?([^;{}()]+);', shared, src)
deduced_templates = set(re.findall(r'template\s*<[^>]*>\s*(?:static\s+)?__global__[^(;{]*?\b(\w+)\s*\(', src))
out, i = [], 0
pat = re.compile(r'(\w+(?:<[^<>;]*>)?)\s*<<<')
while True:
    m = pat.search(src, i)
    if not m:
        out.append(src[i:]); break
    name = m.group(1)
    j = src.index('>>>', m.end())
    cfg = src[m.end():j]
    assert src[j+3] == '(', src[j:j+20]
    depth, k = 0, j + 3
    while True:
        if src[k] == '(': depth += 1
        elif src[k] == ')':
            depth -= 1
            if depth == 0: break
        k += 1
    args = src[j+4:k]
    # the key identifies the kernel for the opt-in check: its address, except for a kernel template whose
    # arguments are deduced at the call (no address without them; such launches may not exceed 48 KB)
    key = 'nullptr' if name in deduced_templates else '(const void *)' + name
    out.append(src[i:m.start()])
    out.append('emu_launch(%s, emu_cfg(%s), [=](auto... emu_a) { %s(emu_a...); }%s)'
               % (key, cfg, name, ', ' + args if args.strip() else ''))
    i = k + 1
open(sys.argv[2], 'w').write(''.join(out))
