//! Revocation of consent in the words people use (FCC 2024: "any reasonable means").
//!
//! Three readings, strongest first:
//! 1. The carriers' keywords, English and Spanish, as the whole message, repeated or with
//!    courtesy words ("STOP", "STOP STOP STOP", "stop please", "BASTA YA", "no más").
//! 2. A keyword as a sentence of its own ("STOP. Wrong number", "Not interested, stop"), or
//!    with only a "no", "not interested" or "I said" around it ("STOP not interested").
//! 3. A request in any tense or person, repeated, annoyed or reported as an earlier one
//!    ("I told you to stop", "she doesn't want these texts", "deja de enviarme mensajes"),
//!    written as the patterns below.
//!
//! Keywords in another sense are not revocations: "weekend", "stop by tomorrow", "bus stop",
//! "non-stop", "don't stop texting me", "the alto sax", "basta pasta", "remove the old roof",
//! "no más de 10 días". A request to cancel something else ("can I cancel my appointment?")
//! is not one either; only CANCEL (or CANCELAR) on its own is.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::pattern::Pattern;

/// Single-word keywords. END, QUIT, CANCEL and the Spanish ones have everyday senses, so
/// they count only alone.
const KEYWORDS: &[&str] = &[
    "stop",
    "stopall",
    "unsubscribe",
    "unsub",
    "unsuscribe",
    "unsubcribe",
    "cancel",
    "end",
    "quit",
    "revoke",
    "optout",
    "remove",
    "discontinue",
    "dnc",
    "parar",
    "para",
    "pare",
    "paren",
    "alto",
    "basta",
    "cancelar",
    "cancela",
    "baja",
    "detener",
    "detente",
    "fin",
    "st0p",
    "stahp",
];
/// Keywords of several words.
const KEYWORD_RUNS: &[&[&str]] = &[
    &["opt", "out"],
    &["opt", "me", "out"],
    &["stop", "all"],
    &["no", "more"],
    &["no", "mas"],
    &["ya", "no", "mas"],
    &["do", "not", "contact"],
    &["do", "not", "text"],
    &["darme", "de", "baja"],
    &["s", "t", "o", "p"],
];
/// Keywords unmistakable even with a "no" or "not interested" beside them.
const STRONG: &[&str] = &["stop", "stopall", "unsubscribe", "unsub", "optout", "parar", "basta", "detener"];
/// Words that do not change a keyword reply ("stop please", "STOP ALREADY", "basta ya").
const COURTESY: &[&str] = &[
    "please",
    "pls",
    "plz",
    "plez",
    "now",
    "thanks",
    "thank",
    "you",
    "thx",
    "ty",
    "it",
    "this",
    "already",
    "again",
    "asap",
    "immediately",
    "ok",
    "okay",
    "right",
    "sir",
    "maam",
    "ma'am",
    "man",
    "dude",
    "bro",
    "seriously",
    "omg",
    "por",
    "favor",
    "porfavor",
    "porfa",
    "xfa",
    "gracias",
    "ya",
    "ahora",
    "ahorita",
];
/// What may be the whole rest of a sentence with a strong keyword ("STOP no", "nope STOP").
const BESIDE_WHOLE: &[&str] =
    &["no", "nope", "nah", "no way", "hell no", "i said", "i already said", "said", "again i said", "i mean it"];
/// How the rest of such a sentence may begin, after words like "I'm" or "we are" ("STOP I'm
/// not selling", "we are not interested stop").
const BESIDE_START: &[&str] = &[
    "not interested",
    "no thanks",
    "no thank you",
    "not selling",
    "not for sale",
    "wrong number",
    "wrong person",
    "not the owner",
    "don't want",
    "dont want",
    "do not want",
    "no interest",
    "no gracias",
    "no me interesa",
    "no estoy interesado",
    "no estoy interesada",
    "numero equivocado",
];
const LEAD_IN: &[&str] = &[
    "i'm",
    "im",
    "i",
    "am",
    "we're",
    "we",
    "are",
    "were",
    "this",
    "is",
    "it's",
    "its",
    "and",
    "but",
    "because",
    "cause",
    "cuz",
    "sorry",
    "really",
    "just",
    "still",
    "definitely",
    "absolutely",
    "totally",
];

/// "stoooop" and "STOPPP" are STOP.
fn is_stop_spelling(w: &str) -> bool {
    let squeezed: String = w.chars().fold(String::new(), |mut s, c| {
        if !s.ends_with(c) {
            s.push(c);
        }
        s
    });
    squeezed == "stop" && w.len() <= 12
}

fn keyword_at(words: &[&str], at: usize) -> Option<usize> {
    if let Some(run) = KEYWORD_RUNS.iter().find(|run| words[at..].starts_with(run)) {
        return Some(run.len());
    }
    (KEYWORDS.contains(&words[at]) || is_stop_spelling(words[at])).then_some(1)
}

/// Whether `words` is keywords only, repeated or with courtesy words.
pub(super) fn only_keywords(words: &[&str]) -> bool {
    let (mut at, mut saw) = (0, false);
    while at < words.len() {
        if let Some(len) = keyword_at(words, at) {
            saw = true;
            at += len;
        } else if COURTESY.contains(&words[at]) {
            at += 1;
        } else {
            return false;
        }
    }
    saw
}

/// A strong keyword at either end of a sentence whose rest is a refusal ("STOP not
/// interested", "STOP I'm not selling", "nope STOP", "I said stop").
pub(super) fn keyword_beside(words: &[&str]) -> bool {
    let kept: Vec<&str> = words.iter().copied().filter(|w| !COURTESY.contains(w)).collect();
    let strong = |w: &&&str| STRONG.contains(*w) || is_stop_spelling(w);
    let lead = kept.iter().take_while(strong).count();
    let trail = kept.iter().rev().take_while(strong).count();
    let refusal = |rest: &[&str]| {
        let joined = rest.join(" ");
        let begun = rest.iter().skip_while(|w| LEAD_IN.contains(*w)).copied().collect::<Vec<_>>().join(" ");
        BESIDE_WHOLE.contains(&joined.as_str())
            || BESIDE_START.iter().any(|p| begun == *p || begun.starts_with(&format!("{p} ")))
    };
    (lead > 0 && lead < kept.len() && refusal(&kept[lead..]))
        || (trail > 0 && trail < kept.len() && refusal(&kept[..kept.len() - trail]))
}

const SETS: &[(&str, &str)] = &[
    (
        "not",
        "don't|dont|do_not|never|not|can't|cant|cannot|couldn't|wouldn't|won't|wont|non|bus|truck|pit|rest|full|\
        one|last|next|first|quick|a|the",
    ),
    (
        "subject",
        "i|you|u|ya|we|they|he|she|it|if|why|who|that|would|will|you'll|i'll|we'll|u_also|you_also|i_also|\
        we_also|u_just|you_just|i_just|you_even|i_even|you_still|u_still|i_still",
    ),
    ("neg", "don't|dont|do_not|doesn't|doesnt|does_not|please_don't|pls_don't|plz_dont|never|dont_u|don't_you"),
    ("ever", "ever|evr|eva|you_ever|u_ever|you_dare|ever_again|even"),
    ("stop", "stop|quit|cease|discontinue|halt|end"),
    (
        "ing",
        "texting|txting|texing|textin|txtn|messaging|msging|messeging|contacting|sending|calling|emailing|\
        bothering|harassing|harrassing|spamming|bugging|pestering|hitting_me_up|hitting_us_up|reaching_out|writing|\
        blowing_up|receiving|getting_these|getting_texts|getting_messages|getting_your|getting_calls",
    ),
    (
        "det",
        "the|these|those|this|all|your|ur|all_the|all_these|all_of_the|all_of_these|all_your|with|w|with_the|\
        with_these|with_all|with_your|w_the|sending|sending_me|sending_the|any|more|any_more|further|of_these|\
        of_the|of_your|of_this|of_ur|of_those",
    ),
    (
        "adj",
        "stupid|damn|dumb|fucking|freaking|annoying|automated|spam|spammy|marketing|promotional|unwanted|text|\
        robo|junk|bs",
    ),
    (
        "comm",
        "texts|text|txts|txt|messages|message|msgs|msg|sms|calls|emails|spam|texting|messaging|contact|\
        communication|communications|solicitations|mensajes",
    ),
    (
        "verb",
        "text|txt|message|msg|contact|sms|txting|texting|messaging|contacting|hmu|hit_me_up|bother_me|\
        bother_us|bug_me|harass_me|pester_me",
    ),
    (
        "obj",
        "me|us|this_number|her|him|them|here|again|anymore|ever|any_more|my_number|my_phone|my_cell|or_call|\
        or_email|or_message|or_contact|and_call",
    ),
    // Papers and things a seller asks to be taken off: "remove me from the title" is no stop.
    ("owner", "the|my|our|his|her|their|this|that"),
    (
        "paper",
        "title|deed|mortgage|loan|lease|will|trust|hoa|account|policy|insurance|utilities|bill|contract|\
        listing|llc|estate|property|house|note|market|group|chat|hook|application|paperwork|registration",
    ),
    ("doc", "@owner+@paper"),
    ("of_doc", "of+@owner+@paper"),
    ("from_doc", "from|off|off_of+@owner+@paper"),
    (
        "when",
        "before|after|until|till|til|during|while|at_work|on_weekends|on_the_weekend|on_sundays|so_late|\
        so_early|this_late|this_early|late|early|today|tonight|tomorrow|yet|right_now|between|in_the_morning|\
        at_night|on|when_driving|while_driving",
    ),
    ("expletive", "the_f|tf|the_fuck|the_hell|the_heck|the_eff|the_frick|the_freak|fucking|f'ing|freaking|fricking"),
    (
        "self",
        "me|us|myself|ourselves|my_number|this_number|my_name|my_info|my_information|my_phone|my_phone_number|\
        my_cell|my_cell_number|my_contact|my_contact_info|my_details|our_number|our_info|her_number|his_number|\
        their_number|this_phone|this_phone_number|this_contact|this_cell",
    ),
    ("number", "number|numbers|#|digits|phone_number|cell|cell_number|contact|contact_info|info|information|details"),
    (
        "your",
        "your|ur|yall's|y'all's|you_guys|this|that|the|these|those|of_your|of_ur|of_the|of_this|any|all|\
        all_your|every|the_texting|the_mailing|the_contact|the_call|the_calling|the_sms|the_text",
    ),
    (
        "list",
        "list|lists|contact_list|calling_list|texting_list|call_list|mailing_list|sms_list|text_list|database|\
        system|records|contacts|register|registry|lead_list|marketing_list",
    ),
    (
        "off",
        "take|took|taken|taking|get|got|gotten|getting|remove|removed|removing|delete|deleted|drop|dropped|\
        scratch|cross|be|been|put|keep|wipe|want|need|unsubscribe|unsubscribed",
    ),
    ("you", "you|u|ya|y'all|yall|you_guys|you_people|your_company|ur_company|them|him|her|your_team|everyone"),
    (
        "ask",
        "told|tell|telling|asked|ask|asking|begged|beg|begging|requested|request|requesting|want|wanted|need|\
        needed|demand|demanded",
    ),
    ("said", "said|say|says|saying|typed|type|texted|replied|reply|replying|wrote|write|sent|send|responded|respond"),
    ("kw", "stop|stopall|unsubscribe|unsub|remove|opt_out|optout|parar|basta"),
    (
        "trail",
        "please|pls|plz|now|thanks|thank_you|already|again|asap|immediately|ok|okay|right_now|man|dude|bro|ty|\
        thx|for_real|seriously|thank|you",
    ),
    ("persons", "i|we|she|he|they|i'd|we'd|i'm|im|we're|my_wife|my_husband|my_mom|my_dad|please|pls"),
    (
        "wantish",
        "want|wants|wanted|would|like|asked|ask|has|have|had|already|just|need|needs|to|d|wish|demand|\
        requested|request|also|really|please|do|did|prefer|rather|am|is|are|was|were|requesting|asking|going|gonna|\
        wanna|would_like|i'd_like|want_to",
    ),
    (
        "times",
        "several_times|many_times|multiple_times|a_few_times|two_times|three_times|times|before|already|twice|\
        repeatedly|previously|last_week|yesterday",
    ),
    ("tell", "ask|say|tell|told|asked|said|write|text|reply|asking|saying|telling"),
    ("subscription", "subscription|subscriptions|alerts|notifications|texts|messages|texting"),
    ("passive", "removed|deleted|unsubscribed|opted_out|left_alone"),
    ("want", "want|wants|wanted|wish|wishes|wanna|need|needs|consent|consented|agree|agreed"),
    (
        "nowant",
        "don't|dont|do_not|doesn't|doesnt|does_not|didn't|didnt|did_not|no_longer|never|not|dont_ever|\
        don't_ever|won't|wont",
    ),
    (
        "wantfill",
        "to|any|anymore|more|any_more|these|those|your|ur|the|this|be|being|receive|receiving|get|getting|\
        further|of|all|@adj|from_you|from_u|from_your_company|from_this_number|ever",
    ),
    (
        "tocomm",
        "texts|text|txts|messages|msgs|sms|calls|emails|contacted|texted|messaged|called|spammed|solicited|\
        contact|communications|solicitations|hear_from_you|hear_from_u|hear_from_y'all|hear_from_your_company|\
        hear_from_anyone",
    ),
    // Spanish.
    (
        "es_comm",
        "mensajes|mensaje|textos|texto|msjs|msj|mensajitos|sms|llamadas|correos|whatsapps|whatsapp|\
        publicidad|promociones",
    ),
    (
        "es_stop",
        "deja|dejen|deje|dejes|dejar|dejame|para|pare|paren|parale|parenle|parar|detengan|detenga|detener|\
        deten|basta|dejen_ya",
    ),
    (
        "es_inf",
        "enviarme|enviar|mandarme|mandar|escribirme|escribir|textearme|textear|llamarme|contactarme|\
        contactar|molestarme|molestar|mensajearme|enviarnos|escribirnos|mandarnos|contactarnos|molestarnos|\
        llamarnos|recibir|enviarle|escribirle|mandarle|contactarle|contactarla|contactarlo|escribirles|enviarles|\
        mandarles|mensajes|textos|enviar_mensajes|mandar_mensajes|llamar|llamarle|llamarla|llamarlo",
    ),
    (
        "es_2nd",
        "escribas|escriban|escriba|mandes|manden|mande|envies|envien|envie|contactes|contacten|contacte|\
        molestes|molesten|moleste|textees|texteen|mensajees|mensajeen|llames|llamen|llame",
    ),
    (
        "es_nofill",
        "quiero_que|queremos_que|quiere_que|quisiera_que|deseo_que|por_favor|porfavor|favor_de|mas|ya|\
        les_pido_que|le_pido_que|te_pido_que",
    ),
    ("es_want", "quiero|queremos|quiere|quieren|deseo|desea|deseamos|desean|necesito"),
    (
        "es_wantfill",
        "mas|recibir|sus|tus|estos|estas|los|las|ningun|ninguno|ningunos|ninguna|este|esta|su|tu|\
        sus_mensajes|mensajes_de|de|ustedes|usted",
    ),
    (
        "es_erase",
        "borrame|borrenme|borreme|borranos|borrennos|eliminame|eliminenme|elimineme|eliminanos|eliminennos|\
        remuevame|remueveme|remuevanme",
    ),
    (
        "es_out",
        "quitame|quitenme|quiteme|sacame|saquenme|saqueme|quitanos|sacanos|saquennos|quitennos|borra|borren|\
        borre|elimina|eliminen|elimine|quita|quiten|quite|saca|saquen|saque",
    ),
    (
        "es_list",
        "lista|listas|su_lista|tu_lista|sus_listas|la_lista|base|base_de_datos|sistema|contactos|registro|\
        registros",
    ),
    ("es_mine", "mi|este|nuestro"),
    ("es_number", "numero|telefono|celular|contacto|nombre|informacion|info|cel|tel"),
];

/// The request phrases (see the module comment and the set definitions above).
const PATTERNS: &[&str] = &[
    // stop / quit / cease + what is being done ("stop texting me", "quit messaging").
    "!@not @stop @ing !everyone|everybody|people|others|around|about|for|back|in|out",
    "!@not @stop @det* @adj* @comm",
    "!@not @stop it|this with @det* @comm",
    "please|pls|plz stop|quit !by|in|over|at|for|thinking|worrying|the_sale|the_foreclosure",
    "just stop !by|in|over|at|for|thinking|worrying|the_sale|the_foreclosure",
    // "Don't text me": a revocation, unless it only says when ("don't text me after 9").
    "!@subject @neg @ever? @verb @obj !@when|and_drive|and_walk",
    "!@subject @neg @ever? @verb $",
    // "Don't call me" revokes too: a stop on one channel stops every channel (issue 11.3),
    // so "don't call me, text me" is a stop as well.
    "!@subject @neg @ever? call|ring|phone|calling @obj|or_text|or_txt|or_message|or_email|and_text !@when",
    "!@subject @neg @ever? call|ring|phone $",
    "!@subject @neg @ever? send me? any|anymore|more|these|those|@adj* @comm",
    "!@subject never call|ring|bother me|us|this_number|my_number|again",
    "no more|further @det* @adj* @comm",
    "leave me|us|him|her|them|my_family @expletive? alone",
    "leave my ~ alone",
    // remove / delete / take off, and the passive ("we asked to be taken off your list").
    "remove|delete|erase|unsubscribe|unsub|unenroll @self !@from_doc",
    "remove|delete|erase him|her|them from|off @your @list",
    "remove|delete|erase him|her $",
    "take|took|get|got|cross|scratch @self|him|her off !@doc|@of_doc",
    "@off @self|him|her|them? off|from @your @list !price|prices|value",
    "^ off @your? @list @trail* $",
    "lose|loose|delete|erase|forget|trash|burn|toss|ditch|remove my|this|our|her|his|their @number",
    "@persons @wantish* be|been|get|got|being @passive !from|as|by|because|in|when|for",
    "removed|taken_off|taken_of|deleted|unsubscribed|opted_out|dropped off|from @your @list !price",
    "added|put|placed to|on @your? do_not_call|do_not_contact|do_not_text|dnc|no_call|no_text",
    // Reported and repeated: "I told you to stop", "how many times do I have to say stop".
    "@ask @you? to @kw @trail* $",
    "@ask @you? to stop|quit|remove_me|unsubscribe ~? @times",
    "@said @kw !by|in|over|at|and|for|sign|signs|of|the|light|lights|a",
    "part_of stop|no",
    "make it|this|them|these|those stop",
    "make @det* @adj* @comm stop",
    "@want @det* @adj* @comm|it|them|this|these|those to stop|end|cease @trail* $",
    "how do|can|should|would i|we stop|end @det* @adj* @comm|these|this|them|it @trail* $",
    "you'd|youd|you_would|u_would|u'd|y'all_would|yall_would stop @trail* $",
    "opt_out",
    "opt_me_out|opt_us_out|opt_her_out|opt_him_out",
    "unsubscribe|unsub|optout|unsuscribe|unsubcribe @trail* $",
    "unsubscribe|unsub|optout from|of|to @your? @comm|@list|number|#",
    // Wanting none of it, in any person: "she doesn't want these texts".
    "@nowant @want @wantfill* @tocomm",
    "not interested in @wantfill* @tocomm",
    "why|y do|does|are|is|did you|u|y'all|yall|you_guys|you_people|they|this_number keep|still @ing",
    "why|y you|u keep @ing",
    "how_many_times do|must|should|have|will|did|am|are ~* @tell",
    // Annoyed: reported, blocked, called spam.
    "reported|reporting|report you|u|y'all|yall|this_number|your_number|your_company|ur_company",
    "reported|reporting|report|marked|marking|mark|flagged|flagging|flag ~? as spam|junk",
    "^ spam|spammer|spammers|blocked|blocking @trail* $",
    "block|blocking|blocked|blockin you|u|this|this_number|your_number|ur_number|y'all|yall|the_number",
    "is|its|it's|this_is|that's|thats harassment|harrassment|harassing|harrassing|spam|unwanted",
    "!@not cancel|end|stop my|this|the|your|these|all? @subscription",
    "unsubscribe|unsub|optout from|of|to all @trail* $",
    "enough with|of? @det* @adj* @comm",
    "cease_and_desist",
    "cease|stop|end|discontinue|halt all|any? contact|communication|communications",
    "do_not_call|dnc|do_not_contact|do_not_text|don't_call|dont_call list|registry",
    "^ dnc|do_not_contact|do_not_text|do_not_call @trail* $",
    // Spanish.
    "no|ya_no mas @es_comm",
    "@es_stop de @es_inf",
    "no|nunca|ya_no @es_nofill? me|nos @es_2nd",
    "no|nunca|ya_no @es_2nd mas|nada|@es_comm|$",
    "no|nunca|ya_no me? vuelvas|vuelvan|vuelva a @es_inf",
    "no|ya_no me? sigas|sigan|siga enviando|escribiendo|mandando|molestando|enviandome|escribiendome|mandandome",
    "no @es_want @es_wantfill* @es_comm",
    "@es_erase",
    "@es_out de|del @es_list",
    "@es_out @es_mine @es_number",
    "darme|dame|denme|deme|darnos|dennos|me_den|me_de|dar|doy|me_doy de_baja",
    "cancelar|cancela|cancelen|cancele mi|la|su|mis|las|los? suscripcion|subscripcion|suscripciones|mensajes|envios",
    "dejame|dejeme|dejenme|dejanos|dejennos en_paz",
    "ya basta|basta_ya",
    "alto a|con los|estos|sus? @es_comm",
];

/// The patterns, indexed by the word each can start with.
struct Compiled {
    patterns: Vec<Pattern>,
    by_first: HashMap<String, Vec<usize>>,
    anywhere: Vec<usize>,
}

static COMPILED: LazyLock<Compiled> = LazyLock::new(|| {
    let patterns: Vec<Pattern> = PATTERNS.iter().map(|p| Pattern::compile(p, SETS)).collect();
    let (mut by_first, mut anywhere) = (HashMap::<String, Vec<usize>>::new(), Vec::new());
    for (i, p) in patterns.iter().enumerate() {
        match p.first_words() {
            Some(words) => words.iter().for_each(|w| by_first.entry(w.clone()).or_default().push(i)),
            None => anywhere.push(i),
        }
    }
    Compiled { patterns, by_first, anywhere }
});

/// What a keyword written in capitals is marked as before the words are read.
pub(super) const SHOUTED_MARK: &str = "shoutedstopkeyword";

static SHOUTED: LazyLock<Pattern> = LazyLock::new(|| {
    Pattern::compile("!@not shoutedstopkeyword !by|in|over|at|and|sign|signs|light|lights|thinking|worrying", SETS)
});

/// Whether a clause with a capitalised keyword marked ([`SHOUTED_MARK`]) asks to stop.
pub(super) fn shouted(words: &[&str]) -> bool {
    (0..words.len()).any(|at| words[at] == SHOUTED_MARK && SHOUTED.found_at(words, at))
}

/// Whether a clause's words ask to stop.
pub(super) fn requested(words: &[&str]) -> bool {
    let c = &*COMPILED;
    (0..=words.len()).any(|at| {
        let starting = words.get(at).and_then(|w| c.by_first.get(*w)).into_iter().flatten();
        starting.chain(&c.anywhere).any(|&i| c.patterns[i].found_at(words, at))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_and_set_compiles() {
        assert_eq!(COMPILED.patterns.len(), PATTERNS.len());
    }

    #[test]
    fn stop_spellings() {
        assert!(is_stop_spelling("stoooop") && is_stop_spelling("stopppp") && is_stop_spelling("stop"));
        assert!(!is_stop_spelling("stops") && !is_stop_spelling("stopped") && !is_stop_spelling("step"));
    }
}
