/// The vocabulary of a creator-marketing support desk.
enum Words {
    static let openers = [
        "Hi", "Hey", "Hello", "Thanks", "Quick question:", "Update:", "Heads up:", "Following up:", "Good news:",
        "Sorry,",
    ]
    static let phrases = [
        "the first cut is uploaded", "can we move the deadline to Friday", "the brand wants a brighter color grade",
        "please use the new logo", "the music needs a license check", "caption draft attached",
        "we need the 9:16 version for stories", "the product shot at 0:12 is out of focus", "approved on our side",
        "legal asked for the #ad disclosure in the first line", "the voiceover is too fast", "can you add subtitles",
        "payment goes out after the final upload", "the intro is too long, cut it to 3 seconds",
        "the lighting in the kitchen scene works great", "can you send the raw files",
        "posting is scheduled for Tuesday 6pm",
        "the link in bio should point to the spring collection", "we got the contract signed",
        "please resend, the upload failed", "the campaign hashtag is #SpringWithUs",
        "looks great, tiny change on the outro",
    ]
    static let closers = ["Thanks!", "Let me know.", "Cheers", "Talk soon.", "ok?", "🙏", "👍", "", "", ""]
    static let titles = [
        "Spring launch video", "Unboxing reel", "Holiday campaign story", "Product review", "Recipe collab",
        "Back to school haul", "Summer lookbook", "Giveaway post", "Tutorial series", "Brand ambassador intro",
    ]

    static func title(_ random: inout SplitMix) -> String {
        "\(titles[random.next(below: titles.count)]) #\(random.next(below: 900) + 100)"
    }

    /// 20 to `maximum` characters of plausible chat.
    static func message(_ random: inout SplitMix, maximum: Int = 600) -> String {
        let target = 20 + random.next(below: max(1, maximum - 19))
        var text = openers[random.next(below: openers.count)]
        // Characters counted as they are added: `text.count` walks the whole text each time
        // (quadratic, and most of what generating the bench's corpus cost).
        var count = text.count
        while count < target {
            let phrase = phrases[random.next(below: phrases.count)]
            text += " " + phrase + (random.next(below: 3) == 0 ? "." : ",")
            count += phrase.count + 2
        }
        text = String(text.prefix(target))
        let closer = closers[random.next(below: closers.count)]
        if !closer.isEmpty && target + closer.count + 1 <= maximum { text += " " + closer }
        return text
    }
}
