/* The MTG-Jamendo tag vocabularies (names only), eval/clap_vocab.h. Source: MTG/mtg-jamendo-dataset at commit
 * 1b4fa8c, every tag (the part after "genre---", "instrument---", "mood/theme---") that occurs in
 * data/splits/split-0/autotagging_{genre,instrument,moodtheme}-{train,validation,test}.tsv: the dataset's 87 genre,
 * 40 instrument and 56 mood/theme tags (Bogdanov et al., "The MTG-Jamendo Dataset for Automatic Music Tagging",
 * ICML 2019 ML4MD workshop), sorted as the dataset spells them. The metadata is CC BY-NC-SA; tag names are facts. */
#include "eval/clap_vocab.h"

#include <stddef.h>

static const char *const k_genre[] = {
    "60s", "70s", "80s", "90s", "acidjazz", "alternative", "alternativerock", "ambient", "atmospheric", "blues",
    "bluesrock", "bossanova", "breakbeat", "celtic", "chanson", "chillout", "choir", "classical", "classicrock",
    "club", "contemporary", "country", "dance", "darkambient", "darkwave", "deephouse", "disco", "downtempo",
    "drumnbass", "dub", "dubstep", "easylistening", "edm", "electronic", "electronica", "electropop", "ethno",
    "eurodance", "experimental", "folk", "funk", "fusion", "groove", "grunge", "hard", "hardrock", "hiphop",
    "house", "idm", "improvisation", "indie", "industrial", "instrumentalpop", "instrumentalrock", "jazz",
    "jazzfusion", "latin", "lounge", "medieval", "metal", "minimal", "newage", "newwave", "orchestral", "pop",
    "popfolk", "poprock", "postrock", "progressive", "psychedelic", "punkrock", "rap", "reggae", "rnb", "rock",
    "rocknroll", "singersongwriter", "soul", "soundtrack", "swing", "symphonic", "synthpop", "techno", "trance",
    "triphop", "world", "worldfusion",
};

static const char *const k_instrument[] = {
    "accordion", "acousticbassguitar", "acousticguitar", "bass", "beat", "bell", "bongo", "brass", "cello",
    "clarinet", "classicalguitar", "computer", "doublebass", "drummachine", "drums", "electricguitar",
    "electricpiano", "flute", "guitar", "harmonica", "harp", "horn", "keyboard", "oboe", "orchestra", "organ",
    "pad", "percussion", "piano", "pipeorgan", "rhodes", "sampler", "saxophone", "strings", "synthesizer",
    "trombone", "trumpet", "viola", "violin", "voice",
};

static const char *const k_moodtheme[] = {
    "action", "adventure", "advertising", "background", "ballad", "calm", "children", "christmas", "commercial",
    "cool", "corporate", "dark", "deep", "documentary", "drama", "dramatic", "dream", "emotional", "energetic",
    "epic", "fast", "film", "fun", "funny", "game", "groovy", "happy", "heavy", "holiday", "hopeful", "inspiring",
    "love", "meditative", "melancholic", "melodic", "motivational", "movie", "nature", "party", "positive",
    "powerful", "relaxing", "retro", "romantic", "sad", "sexy", "slow", "soft", "soundscape", "space", "sport",
    "summer", "trailer", "travel", "upbeat", "uplifting",
};

const clap_vocab_list clap_vocab_mtg_jamendo[CLAP_VOCAB_MTG_LISTS] = {
    {"mtg-jamendo-genre", k_genre, sizeof k_genre / sizeof *k_genre},
    {"mtg-jamendo-instrument", k_instrument, sizeof k_instrument / sizeof *k_instrument},
    {"mtg-jamendo-moodtheme", k_moodtheme, sizeof k_moodtheme / sizeof *k_moodtheme},
};
