"""Phase-by-phase Python models of the GPU SAE kernels' selection and indexing logic, checked against brute
force: the encoder's merge kernel (kernels/cuda/sae_encode.cu: 128 threads, 512-latent slabs, per-warp append
positions, 8-bit radix select, bitonic sort, merge by rank, lists carried across latent tiles), batch-top-k's
three-digit radix select and ordered fill (sae_batch_topk.cu), and the backward's keys / stable sort / segments /
chunks / partial slots (sae_backward.cu). They run without a GPU (label cpu) and fail on any mismatch; keep them
in step with the kernels when those change. Races and memory errors are compute-sanitizer's job (label gpu)."""
import random
import struct
import sys


def check_encode():
    # Phase-by-phase simulation of encode_merge_kernel (128 threads, barriers as phase boundaries).
    T=128; W=T//32; SLAB=T*4; CAND_MIN=2048
    def fbits(v): return struct.unpack('<I', struct.pack('<f', v))[0]
    def f32(v): return struct.unpack('<f', struct.pack('<f', v))[0]
    def key(v,j): return (fbits(v)<<32) | (0xffffffff - j)
    def pow2ceil(x):
        p=1
        while p<x: p<<=1
        return p
    def select_kth(keys, n, k):
        prefix=0; mask=0; need=k
        for shift in range(56,-1,-8):
            hist=[0]*256
            for i in range(n):
                kk=keys[i]
                if (kk & mask)==prefix: hist[(kk>>shift)&255]+=1
            # warp scan: lane l covers bins 255-8l..248-8l
            s=[sum(hist[255-8*l-j] for j in range(8)) for l in range(32)]
            incl=[]; acc=0
            for l in range(32): acc+=s[l]; incl.append(acc)
            first=[l for l in range(32) if incl[l]>=need][0]
            acc=incl[first]-s[first]
            for j in range(8):
                h=hist[255-8*first-j]
                if acc+h>=need: b=255-8*first-j; above=acc; inbin=h; break
                acc+=h
            prefix|=b<<shift; mask|=255<<shift; need-=above
            if inbin==need: break
        return prefix
    def bitonic(a,P):
        size=2
        while size<=P:
            stride=size>>1
            while stride>0:
                for i in range(P>>1):
                    lo=2*i-(i&(stride-1)); hi=lo+stride
                    desc=(lo&size)==0
                    x,y=a[lo],a[hi]
                    if (x<y)==desc: a[lo],a[hi]=y,x
                stride>>=1
            size<<=1
    def count_greater(a,n,x):
        lo,hi=0,n
        while lo<hi:
            mid=(lo+hi)>>1
            if a[mid]>x: lo=mid+1
            else: hi=mid
        return lo
    class TL: pass
    def merge(t,q):
        C=t.C
        if q>t.k:
            kth=select_kth(C,q,t.k)
            sel=[C[i] for i in range(q) if C[i]>=kth]
            assert len(sel)==t.k, (len(sel), t.k)
            random.shuffle(sel)  # atomic order is arbitrary
            for i in range(t.k): t.Lalt[i]=sel[i]
            for i in range(t.k): C[i]=t.Lalt[i]
            q=t.k
        P=pow2ceil(q)
        assert P<=t.cap
        for i in range(q,P): C[i]=0
        bitonic(C,P)
        new=[None]*t.k
        for i in range(t.cnt):
            r=i+count_greater(C,q,t.L[i])
            if r<t.k: new[r]=t.L[i]
        for j in range(q):
            r=j+count_greater(t.L,t.cnt,C[j])
            if r<t.k: new[r]=C[j]
        t.cnt=min(t.k,t.cnt+q)
        for i in range(t.cnt): assert new[i] is not None
        t.L, t.Lalt = new, t.L
        t.theta = t.L[t.k-1] if t.cnt==t.k else 0
    def launch(tile_row, col0, col1, b, dead, k, ka, st, ast, first, write_pre):
        m=TL(); m.k=k; m.cap=max(pow2ceil(k),CAND_MIN) if k>0 else 0; m.L=[0]*max(k,1); m.Lalt=[0]*max(k,1); m.C=[0]*max(m.cap,1)
        x=TL(); x.k=ka; x.cap=max(pow2ceil(ka),CAND_MIN) if ka>0 else 0; x.L=[0]*max(ka,1); x.Lalt=[0]*max(ka,1); x.C=[0]*max(x.cap,1)
        for t,s in ((m,st),(x,ast)):
            if t.k==0: t.cnt=0; t.theta=0; continue
            t.cnt = 0 if first else s['cnt']
            for i in range(t.cnt): t.L[i]=s['keys'][i]
            t.theta = s['keys'][t.k-1] if (t.cnt==t.k and t.k>0) else 0
        q=qa=0
        c=col0
        while c<col1:
            if q+SLAB>m.cap and m.k>0: merge(m,q); q=0
            if ka>0 and qa+SLAB>x.cap: merge(x,qa); qa=0
            # per warp, 4 rounds
            appm=[]; appa=[]
            for w in range(W):
                wm=[];wa=[]
                for u in range(4):
                    for lane in range(32):
                        tid=w*32+lane; j=c+u*T+tid; ok=j<col1
                        v=0.0
                        if ok:
                            v=f32(tile_row[j-col0]+b[j]); v=v if v>0 else 0.0
                            if write_pre: tile_row[j-col0]=v
                        kk=key(v,j) if ok else 0
                        if ok and m.k>0 and v>0 and kk>m.theta: wm.append(kk)
                        if ka>0 and ok and v>0 and dead[j] and kk>x.theta: wa.append(kk)
                appm.append(wm); appa.append(wa)
            pos=q
            for w in range(W):
                for kk in appm[w]: m.C[pos]=kk; pos+=1
            q=pos
            pos=qa
            for w in range(W):
                for kk in appa[w]: x.C[pos]=kk; pos+=1
            qa=pos
            assert q<=max(m.cap,0) and qa<=max(x.cap,0)
            c+=SLAB
        if q>0: merge(m,q)
        if ka>0 and qa>0: merge(x,qa)
        if m.k>0: st['keys']=list(m.L[:m.cnt])+[0]*(m.k-m.cnt); st['cnt']=m.cnt
        if ka>0: ast['keys']=list(x.L[:x.cnt])+[0]*(x.k-x.cnt); ast['cnt']=x.cnt
    def brute(row, b, dead, k, aux):
        vals=[]
        for j,t in enumerate(row):
            v=f32(t+b[j]); v=v if v>0 else 0.0
            if v>0 and (not aux or dead[j]): vals.append((v,j))
        vals.sort(key=lambda p:(-p[0],p[1]))
        return vals[:k]
    def run(M,k,ka,C,ints,seed):
        random.seed(seed)
        if ints:
            row=[float(random.randint(-5,5)) for _ in range(M)]; b=[float(random.randint(-3,3)) for _ in range(M)]
        else:
            row=[random.uniform(-1,1) for _ in range(M)]; b=[random.uniform(-.1,.1) for _ in range(M)]
        row=[f32(v) for v in row]; b=[f32(v) for v in b]
        dead=[1 if j%3==0 else 0 for j in range(M)]
        st={}; ast={}
        for c0 in range(0,M,C):
            c1=min(M,c0+C)
            launch(row[c0:c1], c0, c1, b, dead, k, ka, st, ast, c0==0, 0)
        got=[(struct.unpack('<f',struct.pack('<I',kk>>32))[0], 0xffffffff-(kk&0xffffffff)) for kk in st.get('keys',[])[:st.get('cnt',0)]]
        exp=brute(row,b,dead,k,False)
        assert got==exp, (M,k,C,ints,got[:5],exp[:5])
        if ka>0:
            goa=[(struct.unpack('<f',struct.pack('<I',kk>>32))[0], 0xffffffff-(kk&0xffffffff)) for kk in ast['keys'][:ast['cnt']]]
            expa=brute(row,b,dead,ka,True)
            assert goa==expa, ('aux',M,ka,C)
    n=0
    for (M,k,ka,C) in [(1100,7,5,1100),(1100,7,5,2048),(5000,33,300,1024),(5000,33,0,512),(4096,256,0,4096),(2051,1,2051,2048),(3000,100,1000,2048),(20000,64,0,2048),(700,2048,0,700)]:
        for ints in (1,0):
            for seed in range(2):
                run(M,k,ka,C,ints,seed); n+=1
    print("encode merge: %d cases ok" % n)


def check_batch_topk():
    def fb(v): return struct.unpack('<I', struct.pack('<f', v))[0]
    def shift(d): return 21 if d==0 else 10 if d==1 else 0
    def width(d): return 10 if d==2 else 11
    def bt(pre, N, M, total):
        st=dict(prefix=0,mask=0,mode=2,need=0,thr=0,take_equal=0)
        for d in range(3):
            bins=1<<width(d); sh=shift(d)
            hist=[0]*2048
            if st['mode']==2:
                for v in pre:
                    if not v>0: continue
                    b=fb(v)
                    if (b&st['mask'])==st['prefix']: hist[(b>>sh)&(bins-1)]+=1
            # pick
            per=bins//32
            if d==0:
                s=sum(hist[:bins]); st['mode']=0 if total==0 else (1 if s<=total else 2); st['need']=total
            if st['mode']==2:
                ss=[sum(hist[bins-1-per*l-j] for j in range(per)) for l in range(32)]
                incl=[];a=0
                for l in range(32): a+=ss[l]; incl.append(a)
                need=st['need']
                first=[l for l in range(32) if incl[l]>=need][0]
                acc=incl[first]-ss[first]; top=bins-1-per*first
                for j in range(per):
                    h=hist[top-j]
                    if acc+h>=need:
                        st['prefix']|=(top-j)<<sh; st['mask']|=(bins-1)<<sh; st['need']=need-acc
                        if d==2: st['thr']=st['prefix']; st['take_equal']=st['need']
                        break
                    acc+=h
        mode=st['mode']; thr=st['thr']
        gt=[0]*N; eq=[0]*N
        for n in range(N):
            for j in range(M):
                v=pre[n*M+j]
                if not v>0: continue
                b=fb(v)
                if mode==1 or (mode==2 and b>thr): gt[n]+=1
                elif mode==2 and b==thr: eq[n]+=1
        eqb=[0]*N; a=0
        for n in range(N): eqb[n]=a; a+=eq[n]
        take=[min(max(st['take_equal']-eqb[n],0),eq[n]) for n in range(N)]
        out=[]
        for n in range(N):
            rank=0; row=[]
            for j in range(M):
                v=pre[n*M+j]
                if not v>0: continue
                b=fb(v); s=mode==1 or (mode==2 and b>thr)
                if mode==2 and b==thr: s = rank<take[n]; rank+=1
                if s: row.append((j,v))
            out.append(row)
        return out
    def brute(pre,N,M,total):
        items=[(-v,n,j) for n in range(N) for j in range(M) for v in [pre[n*M+j]] if v>0]
        items.sort()
        sel=set((n,j) for _,n,j in items[:total])
        return [[(j,pre[n*M+j]) for j in range(M) if (n,j) in sel] for n in range(N)]
    cnt=0
    for (N,M,total,ints) in [(37,110,37*7,1),(37,110,37*7,0),(5,100,1000,0),(5,100,0,1),(30,500,300,1),(10,100,1,1),(10,100,999,1)]:
        for seed in range(3):
            random.seed(seed)
            pre=[float(random.randint(-6,6)) if ints else struct.unpack('<f',struct.pack('<f',random.uniform(-1,1)))[0] for _ in range(N*M)]
            pre=[v if v>0 else 0.0 for v in pre]
            assert bt(pre,N,M,total)==brute(pre,N,M,total),(N,M,total,ints,seed); cnt+=1
    print("batch-top-k: %d cases ok" % cnt)


def check_backward():
    def lower_bound(a,n,x):
        lo,hi=0,n
        while lo<hi:
            mid=(lo+hi)>>1
            if a[mid]<x: lo=mid+1
            else: hi=mid
        return lo
    def row_of(ptr,N,e):
        lo,hi=0,N-1
        while lo<hi:
            mid=(lo+hi+1)>>1
            if ptr[mid]<=e: lo=mid
            else: hi=mid-1
        return lo
    def sim(N,M,d,k,ka,chunk,seed):
        random.seed(seed)
        def codes(kk,cap_extra):
            ptr=[0]; idx=[]; val=[]
            for n in range(N):
                c=random.randint(0,kk)
                js=random.sample(range(M),c)
                if random.random()<0.3 and M>1: js=[0]+[j for j in js if j!=0][:max(0,c-1)]  # hot latent 0
                idx+=js; val+=[random.random() for _ in js]; ptr.append(len(idx))
            cap=len(idx)+cap_extra
            idx+= [-7]*cap_extra; val+=[float('nan')]*cap_extra  # garbage past nnz
            return ptr,idx,val,cap
        pm,im,vm,capm=codes(k,3); pa,ia,va,capa=codes(ka,2) if ka else ([0]*(N+1),[],[],0)
        g=[[random.random() for _ in range(d)] for _ in range(N)]; ge=[[random.random() for _ in range(d)] for _ in range(N)]
        xc=[[random.random() for _ in range(d)] for _ in range(N)]; Wd=[[random.random() for _ in range(d)] for _ in range(M)]
        E=capm+capa
        keys=[0]*E; ids=[0]*E; rowof=[0]*E
        for e in range(E):
            isaux=e>=capm; le=e-capm if isaux else e; ptr=pa if isaux else pm
            key=M; row=0
            if le<ptr[N]: key=(ia if isaux else im)[le]; row=row_of(ptr,N,le)
            keys[e]=key; ids[e]=e; rowof[e]=row
        order=sorted(range(E),key=lambda e:keys[e])  # stable
        ko=[keys[e] for e in order]; io=[ids[e] for e in order]
        seg=[0]*(M+1); items=[0]*(M+1); slots=[0]*(M+1)
        for i in range(M+1):
            s=lower_bound(ko,E,i); seg[i]=s
            if i==M: continue
            cnt=lower_bound(ko,E,i+1)-s; nch=1 if cnt<=chunk else (cnt+chunk-1)//chunk
            items[i]=nch; slots[i]=nch if nch>1 else 0
        item_start=[0]*(M+1); slot_start=[0]*(M+1)
        for i in range(M): item_start[i+1]=item_start[i]+items[i]; slot_start[i+1]=slot_start[i]+slots[i]
        max_items=M+(E+chunk-1)//chunk; n_slots=2*E//chunk+1
        assert item_start[M]<=max_items and slot_start[M]<=n_slots
        dWd=[[None]*d for _ in range(M)]; dWe=[[None]*d for _ in range(M)]; dbe=[None]*M
        pd={}; pe={}; pb={}
        for b in range(max_items):
            if b>=item_start[M]: continue
            lo,hi=0,M-1
            while lo<hi:
                mid=(lo+hi+1)>>1
                if item_start[mid]<=b: lo=mid
                else: hi=mid-1
            i=lo; cn=b-item_start[i]; nch=item_start[i+1]-item_start[i]
            s0=seg[i]+cn*chunk; s1=min(s0+chunk,seg[i+1])
            ad=[0.0]*d; ae=[0.0]*d; db=0.0
            for p in range(s0,s1):
                idd=io[p]; row=rowof[idd]; aux=idd>=capm; a=va[idd-capm] if aux else vm[idd]
                gg=(ge if aux else g)[row]; dz=sum(gg[c]*Wd[i][c] for c in range(d))
                for c in range(d): ad[c]+=a*gg[c]; ae[c]+=dz*xc[row][c]
                db+=dz
            if nch==1: dWd[i]=ad; dWe[i]=ae; dbe[i]=db
            else:
                slot=slot_start[i]+cn; assert slot not in pd; pd[slot]=ad; pe[slot]=ae; pb[slot]=db
        for i in range(M):
            nch=item_start[i+1]-item_start[i]
            if nch<=1: continue
            s0=slot_start[i]
            dWd[i]=[sum(pd[s0+t][c] for t in range(nch)) for c in range(d)]
            dWe[i]=[sum(pe[s0+t][c] for t in range(nch)) for c in range(d)]
            dbe[i]=sum(pb[s0+t] for t in range(nch))
        # brute force
        rd=[[0.0]*d for _ in range(M)]; re_=[[0.0]*d for _ in range(M)]; rb=[0.0]*M
        for (ptr,idx,val,G) in ((pm,im,vm,g),(pa,ia,va,ge)):
            for n in range(N):
                for e in range(ptr[n],ptr[n+1]):
                    i=idx[e]; a=val[e]; dz=sum(G[n][c]*Wd[i][c] for c in range(d))
                    for c in range(d): rd[i][c]+=a*G[n][c]; re_[i][c]+=dz*xc[n][c]
                    rb[i]+=dz
        err=max(max(abs(dWd[i][c]-rd[i][c]) for c in range(d)) for i in range(M))
        err=max(err,max(max(abs(dWe[i][c]-re_[i][c]) for c in range(d)) for i in range(M)))
        err=max(err,max(abs(dbe[i]-rb[i]) for i in range(M)))
        heavy=sum(1 for i in range(M) if item_start[i+1]-item_start[i]>1)
        return err,heavy
    for args in [(37,50,5,7,5,4),(60,30,3,12,20,8),(200,20,2,4,0,16),(10,5,3,5,5,2),(1,3,2,3,3,1)]:
        for seed in range(3):
            err,heavy=sim(*args,seed)
            assert err<1e-9,(args,seed,err)
    print("backward indexing: ok")


if __name__ == "__main__":
    check_encode()
    check_batch_topk()
    check_backward()
    print("3 passed, 0 failed")
