"""Train the tiny T5-style SentencePiece unigram model -> tests/fixtures/tiny-musicgen/spiece.model

The corpus is generated here (deterministic, seeded): English music descriptions
plus some accented Latin, a little CJK and emoji.  Frequent CJK characters end
up in the vocabulary; rare ones, most emoji and anything unseen map to <unk>
(id 2), exactly like t5-base's spiece.model, which has no byte fallback.

Trainer settings mirror t5-base's spiece.model trainer_spec: unigram,
nmt_nfkc normalization, add_dummy_prefix, remove_extra_whitespaces,
pad=0 "<pad>", eos=1 "</s>", unk=2 "<unk>", no bos, byte_fallback false.
"""

import io
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

VOCAB_SIZE = 1000

GENRES = [
    "rock", "pop", "jazz", "blues", "techno", "house", "hip hop", "lo-fi", "ambient", "classical",
    "funk", "soul", "reggae", "metal", "punk", "folk", "country", "disco", "trance", "drum and bass",
    "dubstep", "synthwave", "bossa nova", "samba", "tango", "flamenco", "k-pop", "j-pop", "afrobeat",
    "gospel", "orchestral", "cinematic", "chiptune", "trap", "r&b", "indie", "grunge", "ska",
]
DECADES = ["60s", "70s", "80s", "90s", "2000s", "1970s", "1980s", "modern", "vintage", "retro"]
INSTR = [
    "guitar", "electric guitar", "acoustic guitar", "bass", "bass guitar", "drums", "piano", "synth",
    "synthesizer", "violin", "cello", "strings", "saxophone", "trumpet", "flute", "organ", "harp",
    "808s", "hi-hats", "kick drum", "snare", "claps", "choir", "vocals", "pads", "arpeggios",
    "marimba", "banjo", "ukulele", "accordion", "harmonica", "sitar", "tabla", "koto", "shamisen",
]
ADJ = [
    "loud", "soft", "heavy", "bright", "dark", "warm", "punchy", "dreamy", "energetic", "calm",
    "melancholic", "happy", "sad", "epic", "groovy", "smooth", "distorted", "clean", "lush", "sparse",
    "driving", "uplifting", "haunting", "mellow", "aggressive", "gentle", "catchy", "atmospheric",
]
MOODS = ["for studying", "for a road trip", "for dancing", "at night", "in the rain", "by the sea",
         "for a movie trailer", "for a video game", "for meditation", "at a party", "in a cafe"]
TEMPO = ["slow", "fast", "mid-tempo", "upbeat", "laid-back"]
ACCENTED = [
    "mélodie douce au piano", "chanson française très élégante", "ambiance de café à Paris",
    "canción española con guitarra", "música alegre para bailar", "ritmo rápido y energético",
    "corazón, pasión y ñandú", "música brasileira com violão", "coração e saudade", "canção suave",
    "Straße Musik mit schöner Gitarre", "fröhliche Melodie für Kinder", "größer, schneller, lauter",
    "naïve façade, déjà vu, crème brûlée", "Ærø øl åben", "Dvořák and Janáček inspired strings",
    "Björk style électronique", "piñata fiesta", "über cool", "señor Müller's café",
]
CJK_COMMON = ["音楽", "ピアノ", "ギター", "音楽と歌", "피아노", "음악", "钢琴", "音乐", "吉他"]
CJK_RARE = ["静かな夜の雨", "激しいロック", "아름다운 노래", "轻松的爵士乐", "春の桜", "古典音乐"]
EMOJI = ["🎸", "🎹", "🥁", "🎶", "🎵", "🎷", "🎺", "🎻", "🔥", "✨", "😊", "💃"]

WORDS = """
atmosphere rhythm melody harmony chorus verse bridge intro outro crescendo tempo groove swing syncopation
riff solo lick chord progression major minor seventh diminished augmented suspended arpeggiated staccato legato
reverb delay echo chorus flanger phaser compressor saturation overdrive fuzz tremolo vibrato sidechain filter
resonance cutoff envelope attack release sustain decay oscillator sawtooth square triangle sine noise sampler
vinyl crackle tape hiss warble wobble glitch stutter chopped pitched reversed layered stacked doubled panned
stereo mono wide narrow deep shallow airy crisp muddy gritty raw polished glossy shimmering sparkling twinkling
thunderous booming rumbling pulsing throbbing pounding marching galloping shuffling bouncing rolling flowing
floating drifting soaring rising falling building dropping breaking exploding fading swelling blooming
nostalgic romantic mysterious playful whimsical triumphant heroic tragic ominous tense suspenseful relaxing
soothing hypnotic meditative spiritual euphoric ecstatic joyful cheerful hopeful bittersweet wistful lonely
festival stadium club warehouse basement garage bedroom studio cathedral church forest desert ocean mountain
city street subway rooftop sunset sunrise midnight morning evening summer winter autumn spring holiday wedding
orchestra ensemble quartet trio duet soloist band crew producer drummer bassist guitarist pianist singer rapper
falsetto baritone soprano tenor alto whisper shout scream hum chant yodel beatbox scat harmonies backing
percussion congas bongos timpani glockenspiel xylophone vibraphone celesta harpsichord clavinet rhodes wurlitzer
mellotron theremin didgeridoo bagpipes mandolin bouzouki balalaika oud erhu guzheng pipa shakuhachi kalimba
steelpan cowbell tambourine shaker triangle woodblock cajon djembe darbuka gong cymbals crash ride splash
""".split()

WORDS += """
the a an of in on at to from by for with without under over between through into during after before
about against among around behind beyond near inside outside along across toward upon within
light heavy quick slow early late ancient future electronic acoustic analog digital organic synthetic
human robotic alien cosmic galactic tropical arctic urban rural industrial mechanical natural magical
golden silver crystal velvet neon plastic wooden metallic glassy dusty rusty frozen burning electric
river island valley canyon jungle meadow harbor lighthouse castle temple palace garden village market
train car boat plane rocket bicycle horse dragon ghost angel devil hero villain pirate ninja samurai cowboy
story journey adventure battle victory defeat memory dream nightmare vision secret promise mystery legend
love heart soul mind spirit body fire water earth wind storm thunder lightning rain snow ice sun moon star
dance party celebration ceremony ritual prayer lullaby anthem ballad hymn march waltz polka mazurka minuet
sonata symphony concerto overture prelude fugue etude nocturne serenade rhapsody requiem opera musical
remix mashup cover version edit bootleg demo live recording session rehearsal performance concert show
minimal maximal complex simple repetitive evolving dynamic static chaotic ordered random structured
quiet silent noisy sharp blunt rough fragile powerful weak strong thick thin fat lean hollow dense
""".split()

WORDS += """
one two three four five six seven eight nine ten eleven twelve twenty thirty hundred thousand first second
third last final next previous black white red blue green yellow purple orange pink brown grey violet
cyan magenta turquoise scarlet crimson amber emerald sapphire ruby ivory ebony
happy happier happiest sadly slowly quickly gently loudly softly brightly darkly warmly coldly
play plays played playing sing sings sang singing drum drums drummed drumming strum strummed strumming
build builds built building fade fades faded fading rise rises rose rising fall falls fell falling
start starts started starting stop stops stopped stopping loop loops looped looping mix mixes mixed mixing
record records recorded recording produce produces produced producing compose composes composed composing
feature features featured featuring inspire inspires inspired inspiring blend blends blended blending
""".split()


def sentence(rng):
    r = rng.random()
    if r < 0.55:
        parts = []
        if rng.random() < 0.5:
            parts.append(rng.choice(DECADES))
        parts.append(rng.choice(GENRES))
        parts.append(rng.choice(["song", "track", "tune", "beat", "piece", "instrumental", "jam"]))
        parts.append("with")
        parts.append(rng.choice(ADJ))
        parts.append(rng.choice(INSTR))
        if rng.random() < 0.6:
            parts.append("and")
            parts.append(rng.choice(ADJ))
            parts.append(rng.choice(INSTR))
        if rng.random() < 0.4:
            parts.append(rng.choice(MOODS))
        if rng.random() < 0.3:
            parts.append(f"at {rng.randint(60, 180)} bpm")
        s = " ".join(parts)
        if rng.random() < 0.3:
            s = s[0].upper() + s[1:]
        if rng.random() < 0.4:
            s += rng.choice([".", "!", ",", ";", "..."])
        return s
    if r < 0.64:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9)))
    if r < 0.72:
        return f"A {rng.choice(TEMPO)} {rng.choice(ADJ)} {rng.choice(GENRES)} piece featuring {rng.choice(INSTR)}, " \
               f"{rng.choice(INSTR)} and {rng.choice(INSTR)} ({rng.randint(1, 9)} minutes)"
    if r < 0.87:
        return rng.choice(ACCENTED) + (" " + rng.choice(ACCENTED) if rng.random() < 0.4 else "")
    if r < 0.95:
        return rng.choice(CJK_COMMON) + " " + rng.choice(GENRES) + " " + rng.choice(CJK_COMMON)
    if r < 0.975:
        return rng.choice(CJK_RARE) + " " + rng.choice(INSTR)
    return rng.choice(GENRES) + " " + rng.choice(EMOJI) + " " + rng.choice(INSTR)


def corpus(n=16000, seed=1234):
    rng = random.Random(seed)
    return [sentence(rng) for _ in range(n)]


def train(out_path):
    import sentencepiece as spm

    lines = corpus()
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=buf,
        model_type="unigram",
        vocab_size=VOCAB_SIZE,
        character_coverage=0.9995,
        normalization_rule_name="nmt_nfkc",
        add_dummy_prefix=True,
        remove_extra_whitespaces=True,
        split_by_whitespace=True,
        split_digits=False,
        byte_fallback=False,
        pad_id=0, pad_piece="<pad>",
        eos_id=1, eos_piece="</s>",
        unk_id=2, unk_piece="<unk>",
        bos_id=-1,
        num_threads=1,
        shuffle_input_sentence=False,
        input_sentence_size=0,
        seed_sentencepiece_size=100000,
        max_sentencepiece_length=16,
        minloglevel=2,
    )
    data = buf.getvalue()
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "wb") as f:
        f.write(data)
    return out_path


def main():
    out = train(os.path.join(common.TINY_DIR, "spiece.model"))
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=out)
    assert sp.get_piece_size() == VOCAB_SIZE
    assert [sp.id_to_piece(i) for i in range(3)] == ["<pad>", "</s>", "<unk>"]
    assert sp.pad_id() == 0 and sp.eos_id() == 1 and sp.unk_id() == 2 and sp.bos_id() == -1
    print(f"wrote {out} ({os.path.getsize(out)} bytes, {VOCAB_SIZE} pieces)")


if __name__ == "__main__":
    main()
