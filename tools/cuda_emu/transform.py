# tools/cuda_emu: turns a .cu file into host C++ for the emulator. `k<<<grid, block, smem, stream>>>(args)`
# becomes emu_launch(key, grid, block, smem, stream, [=]() { k(args); }) (key = the kernel's address when its
# template arguments are explicit, for the shared-memory opt-in check), and `[extern] __shared__ T a[N]`
# becomes a pointer into the block's dynamic / static shared memory. Usage: transform.py in.cu out.cpp
import re, sys
src = open(sys.argv[1]).read()
src = re.sub(r'extern\s+__shared__\s+(\w+)\s+(\w+)\[\];', r'\1 *\2 = (\1 *)emu_dyn_smem();', src)
src = re.sub(r'__shared__\s+(\w+)\s+(\w+)\[([^\]]+)\];', r'\1 *\2 = (\1 *)emu_static_smem(sizeof(\1) * (\3));', src)
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
    key = '(const void *)' + name if '<' in name else 'nullptr'
    out.append(src[i:m.start()])
    out.append('emu_launch(%s, %s, [=]() { %s(%s); })' % (key, cfg, name, args))
    i = k + 1
open(sys.argv[2], 'w').write(''.join(out))
