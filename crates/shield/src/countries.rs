//! E.164 country codes (ITU-T E.164, "List of ITU-T Recommendation E.164 assigned country codes"):
//! which country an international number calls, so a Class of Service can allow international calls
//! to a few countries only.
//!
//! The table is data: the codes in service, geographic and global (satellite, international networks,
//! freephone, premium rate), without the spare and withdrawn ones. Codes form a prefix code (no code
//! is the start of another), so reading 1 to 3 digits finds at most one; the lookup still takes the
//! longest match, as the numbering plan defines it. The North American Numbering Plan shares code `1`
//! (the United States, Canada and 23 Caribbean and Pacific countries): it is one country code here,
//! as it is for any carrier's rate table at this level.

use std::fmt;

/// An assigned E.164 country code (1 to 3 digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode(u16);

impl CountryCode {
    pub fn get(self) -> u16 {
        self.0
    }

    /// Who uses the code (a country, or a global service for the non-geographic ones).
    pub fn name(self) -> &'static str {
        TABLE.binary_search_by_key(&self.0, |&(c, _)| c).map(|i| TABLE[i].1).unwrap_or("?")
    }

    /// The country code `digits` starts with: the longest assigned code among its first 1 to 3
    /// digits. `None` when they are not digits or no assigned code matches (a spare code).
    pub fn of_number(digits: &str) -> Option<Self> {
        let b = digits.as_bytes();
        // No country code starts with 0: "044" is not 44.
        if b.first() == Some(&b'0') {
            return None;
        }
        (1..=3.min(b.len())).rev().find_map(|n| {
            let head = &b[..n];
            if !head.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let code = head.iter().fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
            Self::assigned(code)
        })
    }

    fn assigned(code: u16) -> Option<Self> {
        TABLE.binary_search_by_key(&code, |&(c, _)| c).ok().map(|_| Self(code))
    }

    /// Assigned codes that start with `prefix` (for suggesting `420` when someone wrote `42`).
    pub fn starting_with(prefix: &str) -> impl Iterator<Item = Self> + '_ {
        TABLE.iter().filter(move |(c, _)| c.to_string().starts_with(prefix)).map(|&(c, _)| Self(c))
    }
}

/// Why a text is not a country code, worded for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CountryCodeError {
    #[error("{0:?} is not a country code: give E.164 country codes as 1 to 3 digits, such as 44 or 49")]
    NotDigits(String),
    #[error("{0:?}: give the country code without the +, as {1}")]
    Plus(String, String),
    #[error("no country has the calling code {0}{1}")]
    Unassigned(String, String),
}

impl TryFrom<&str> for CountryCode {
    type Error = CountryCodeError;

    /// Parses exactly one assigned code: digits only, no `+`, no leading zero.
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix('+') {
            return Err(CountryCodeError::Plus(s.to_owned(), rest.to_owned()));
        }
        if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CountryCodeError::NotDigits(s.to_owned()));
        }
        let code: u16 = s.parse().map_err(|_| CountryCodeError::NotDigits(s.to_owned()))?;
        match Self::assigned(code).filter(|_| !s.starts_with('0')) {
            Some(c) => Ok(c),
            None => {
                let close: Vec<String> =
                    Self::starting_with(s).take(4).map(|c| format!("{c} ({})", c.name())).collect();
                let hint =
                    if close.is_empty() { String::new() } else { format!("; did you mean {}?", close.join(", ")) };
                Err(CountryCodeError::Unassigned(s.to_owned(), hint))
            }
        }
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Assigned country codes, sorted, with who uses them.
const TABLE: &[(u16, &str)] = &[
    (1, "North American Numbering Plan"),
    (7, "Russia, Kazakhstan"),
    (20, "Egypt"),
    (27, "South Africa"),
    (30, "Greece"),
    (31, "Netherlands"),
    (32, "Belgium"),
    (33, "France"),
    (34, "Spain"),
    (36, "Hungary"),
    (39, "Italy, Vatican City"),
    (40, "Romania"),
    (41, "Switzerland"),
    (43, "Austria"),
    (44, "United Kingdom"),
    (45, "Denmark"),
    (46, "Sweden"),
    (47, "Norway"),
    (48, "Poland"),
    (49, "Germany"),
    (51, "Peru"),
    (52, "Mexico"),
    (53, "Cuba"),
    (54, "Argentina"),
    (55, "Brazil"),
    (56, "Chile"),
    (57, "Colombia"),
    (58, "Venezuela"),
    (60, "Malaysia"),
    (61, "Australia"),
    (62, "Indonesia"),
    (63, "Philippines"),
    (64, "New Zealand"),
    (65, "Singapore"),
    (66, "Thailand"),
    (81, "Japan"),
    (82, "South Korea"),
    (84, "Vietnam"),
    (86, "China"),
    (90, "Turkey"),
    (91, "India"),
    (92, "Pakistan"),
    (93, "Afghanistan"),
    (94, "Sri Lanka"),
    (95, "Myanmar"),
    (98, "Iran"),
    (211, "South Sudan"),
    (212, "Morocco"),
    (213, "Algeria"),
    (216, "Tunisia"),
    (218, "Libya"),
    (220, "Gambia"),
    (221, "Senegal"),
    (222, "Mauritania"),
    (223, "Mali"),
    (224, "Guinea"),
    (225, "Côte d'Ivoire"),
    (226, "Burkina Faso"),
    (227, "Niger"),
    (228, "Togo"),
    (229, "Benin"),
    (230, "Mauritius"),
    (231, "Liberia"),
    (232, "Sierra Leone"),
    (233, "Ghana"),
    (234, "Nigeria"),
    (235, "Chad"),
    (236, "Central African Republic"),
    (237, "Cameroon"),
    (238, "Cape Verde"),
    (239, "São Tomé and Príncipe"),
    (240, "Equatorial Guinea"),
    (241, "Gabon"),
    (242, "Republic of the Congo"),
    (243, "Democratic Republic of the Congo"),
    (244, "Angola"),
    (245, "Guinea-Bissau"),
    (246, "Diego Garcia"),
    (247, "Ascension Island"),
    (248, "Seychelles"),
    (249, "Sudan"),
    (250, "Rwanda"),
    (251, "Ethiopia"),
    (252, "Somalia"),
    (253, "Djibouti"),
    (254, "Kenya"),
    (255, "Tanzania"),
    (256, "Uganda"),
    (257, "Burundi"),
    (258, "Mozambique"),
    (260, "Zambia"),
    (261, "Madagascar"),
    (262, "Réunion, Mayotte"),
    (263, "Zimbabwe"),
    (264, "Namibia"),
    (265, "Malawi"),
    (266, "Lesotho"),
    (267, "Botswana"),
    (268, "Eswatini"),
    (269, "Comoros"),
    (290, "Saint Helena, Tristan da Cunha"),
    (291, "Eritrea"),
    (297, "Aruba"),
    (298, "Faroe Islands"),
    (299, "Greenland"),
    (350, "Gibraltar"),
    (351, "Portugal"),
    (352, "Luxembourg"),
    (353, "Ireland"),
    (354, "Iceland"),
    (355, "Albania"),
    (356, "Malta"),
    (357, "Cyprus"),
    (358, "Finland"),
    (359, "Bulgaria"),
    (370, "Lithuania"),
    (371, "Latvia"),
    (372, "Estonia"),
    (373, "Moldova"),
    (374, "Armenia"),
    (375, "Belarus"),
    (376, "Andorra"),
    (377, "Monaco"),
    (378, "San Marino"),
    (379, "Vatican City"),
    (380, "Ukraine"),
    (381, "Serbia"),
    (382, "Montenegro"),
    (383, "Kosovo"),
    (385, "Croatia"),
    (386, "Slovenia"),
    (387, "Bosnia and Herzegovina"),
    (389, "North Macedonia"),
    (420, "Czech Republic"),
    (421, "Slovakia"),
    (423, "Liechtenstein"),
    (500, "Falkland Islands"),
    (501, "Belize"),
    (502, "Guatemala"),
    (503, "El Salvador"),
    (504, "Honduras"),
    (505, "Nicaragua"),
    (506, "Costa Rica"),
    (507, "Panama"),
    (508, "Saint Pierre and Miquelon"),
    (509, "Haiti"),
    (590, "Guadeloupe"),
    (591, "Bolivia"),
    (592, "Guyana"),
    (593, "Ecuador"),
    (594, "French Guiana"),
    (595, "Paraguay"),
    (596, "Martinique"),
    (597, "Suriname"),
    (598, "Uruguay"),
    (599, "Curaçao, Caribbean Netherlands"),
    (670, "Timor-Leste"),
    (672, "Australian External Territories"),
    (673, "Brunei"),
    (674, "Nauru"),
    (675, "Papua New Guinea"),
    (676, "Tonga"),
    (677, "Solomon Islands"),
    (678, "Vanuatu"),
    (679, "Fiji"),
    (680, "Palau"),
    (681, "Wallis and Futuna"),
    (682, "Cook Islands"),
    (683, "Niue"),
    (685, "Samoa"),
    (686, "Kiribati"),
    (687, "New Caledonia"),
    (688, "Tuvalu"),
    (689, "French Polynesia"),
    (690, "Tokelau"),
    (691, "Micronesia"),
    (692, "Marshall Islands"),
    (800, "International Freephone"),
    (808, "International Shared Cost Service"),
    (850, "North Korea"),
    (852, "Hong Kong"),
    (853, "Macau"),
    (855, "Cambodia"),
    (856, "Laos"),
    (870, "Inmarsat"),
    (878, "Universal Personal Telecommunications"),
    (880, "Bangladesh"),
    (881, "Global Mobile Satellite System"),
    (882, "International Networks"),
    (883, "International Networks"),
    (886, "Taiwan"),
    (888, "Telecommunications for Disaster Relief"),
    (960, "Maldives"),
    (961, "Lebanon"),
    (962, "Jordan"),
    (963, "Syria"),
    (964, "Iraq"),
    (965, "Kuwait"),
    (966, "Saudi Arabia"),
    (967, "Yemen"),
    (968, "Oman"),
    (970, "Palestine"),
    (971, "United Arab Emirates"),
    (972, "Israel"),
    (973, "Bahrain"),
    (974, "Qatar"),
    (975, "Bhutan"),
    (976, "Mongolia"),
    (977, "Nepal"),
    (979, "International Premium Rate Service"),
    (992, "Tajikistan"),
    (993, "Turkmenistan"),
    (994, "Azerbaijan"),
    (995, "Georgia"),
    (996, "Kyrgyzstan"),
    (998, "Uzbekistan"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_a_prefix_code() {
        assert!(TABLE.windows(2).all(|w| w[0].0 < w[1].0), "sorted, no duplicates");
        for &(a, _) in TABLE {
            for &(b, _) in TABLE {
                assert!(a == b || !b.to_string().starts_with(&a.to_string()), "{a} is a prefix of {b}");
            }
            assert!((1..=999).contains(&a));
        }
    }

    #[test]
    fn country_of_a_number_is_its_longest_assigned_prefix() {
        let cases = [
            ("441632960000", Some(44)),
            ("4930123456", Some(49)),
            ("12125551234", Some(1)),
            ("18765551234", Some(1)),
            ("74951234567", Some(7)),
            ("35312345678", Some(353)),
            ("4201234567", Some(420)),
            ("88216123456", Some(882)),
            ("979123456", Some(979)),
            ("2101234", None),
            ("422123", None),
            ("9991234", None),
            ("0441234", None),
            ("", None),
            ("4", None),
            ("44", Some(44)),
            ("x44", None),
        ];
        for (n, want) in cases {
            assert_eq!(CountryCode::of_number(n).map(CountryCode::get), want, "{n}");
        }
        assert_eq!(CountryCode::of_number("441").unwrap().name(), "United Kingdom");
    }

    #[test]
    fn parsing_accepts_assigned_codes_only_and_says_why() {
        assert_eq!(CountryCode::try_from("44").unwrap().get(), 44);
        assert_eq!(CountryCode::try_from(" 1 ").unwrap().get(), 1);
        assert_eq!(CountryCode::try_from("882").unwrap().name(), "International Networks");
        let err = |s: &str| CountryCode::try_from(s).unwrap_err().to_string();
        assert!(err("42").contains("did you mean 420 (Czech Republic)"), "{}", err("42"));
        assert!(err("+44").contains("without the +, as 44"), "{}", err("+44"));
        assert!(err("4x").contains("1 to 3 digits"));
        assert!(err("4444").contains("1 to 3 digits"));
        assert!(err("").contains("1 to 3 digits"));
        assert!(err("044").contains("no country has the calling code 044"), "{}", err("044"));
        assert_eq!(err("999"), "no country has the calling code 999");
    }
}
