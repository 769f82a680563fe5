//! Countdown: reach a target from 4 given numbers with + - * / (each number at most once, any
//! parentheses). Prompt `a,b,c,d/t=`, answer an expression such as `(7+3)*25-50`; the verifier
//! evaluates a completion exactly (rationals) and checks the numbers it uses.

use crate::rng::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Countdown {
    /// Numbers are drawn from 1..=max_number; targets lie in 1..=max_target.
    pub max_number: u32,
    pub max_target: u32,
}

impl Default for Countdown {
    fn default() -> Self {
        Countdown {
            max_number: 25,
            max_target: 500,
        }
    }
}

/// A problem: the numbers, the target and one expression that reaches it.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    pub numbers: [u32; 4],
    pub target: u32,
    pub expression: String,
}

impl Instance {
    pub fn prompt(&self) -> String {
        let n = self.numbers.map(|x| x.to_string()).join(",");
        format!("{n}/{}=", self.target)
    }
}

impl Countdown {
    /// Draws numbers and a left-deep expression over all four whose every step is a positive
    /// integer (exact division, positive differences) and whose value is a target in range.
    pub fn sample(&self, rng: &mut Rng) -> Instance {
        loop {
            let numbers = [0; 4].map(|_| 1 + (rng.next_u64() % self.max_number as u64) as u32);
            let mut order = [0usize, 1, 2, 3];
            for i in (1..4).rev() {
                order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
            }
            let mut value = numbers[order[0]] as u64;
            let mut text = numbers[order[0]].to_string();
            let mut ok = true;
            for &i in &order[1..] {
                let x = numbers[i] as u64;
                let (next, op) = match rng.next_u64() % 4 {
                    0 => (Some(value + x), '+'),
                    1 => (value.checked_sub(x).filter(|v| *v > 0), '-'),
                    2 => (Some(value * x), '*'),
                    _ => (value.is_multiple_of(x).then(|| value / x), '/'),
                };
                match next {
                    Some(v) => {
                        value = v;
                        text = format!("({text}{op}{x})");
                    }
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
            if ok && value >= 1 && value <= self.max_target as u64 {
                let expression = text
                    .strip_prefix('(')
                    .and_then(|t| t.strip_suffix(')'))
                    .unwrap_or(&text)
                    .to_string();
                return Instance {
                    numbers,
                    target: value as u32,
                    expression,
                };
            }
        }
    }
}

/// Parses `a,b,c,d/t=`.
pub fn parse_prompt(prompt: &str) -> Option<(Vec<u32>, u32)> {
    let (numbers, target) = prompt.strip_suffix('=')?.split_once('/')?;
    let numbers = numbers
        .split(',')
        .map(|n| n.trim().parse().ok())
        .collect::<Option<Vec<u32>>>()?;
    Some((numbers, target.trim().parse().ok()?))
}

/// Whether the completion's first line is an expression over the prompt's numbers (each at most
/// once) whose exact value is the target.
pub fn verify(prompt: &str, completion: &str) -> bool {
    let Some((numbers, target)) = parse_prompt(prompt) else {
        return false;
    };
    let line = completion.lines().next().unwrap_or("").trim();
    let mut p = Parser {
        s: line.as_bytes(),
        at: 0,
        used: Vec::new(),
    };
    let Some(value) = p.expr() else {
        return false;
    };
    if p.at != p.s.len() {
        return false;
    }
    let mut left = numbers;
    for u in &p.used {
        match left.iter().position(|x| x == u) {
            Some(i) => {
                left.swap_remove(i);
            }
            None => return false,
        }
    }
    value == (target as i128, 1)
}

/// Recursive descent over `expr := term (('+'|'-') term)*`, `term := factor (('*'|'/') factor)*`,
/// `factor := number | '(' expr ')'`, in exact rationals (numerator, positive denominator).
struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    used: Vec<u32>,
}

type Q = (i128, i128);

fn reduce((n, d): Q) -> Option<Q> {
    if d == 0 {
        return None;
    }
    let g = gcd(n.abs(), d.abs()).max(1);
    let sign = if d < 0 { -1 } else { 1 };
    Some((sign * n / g, sign * d / g))
}

fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl Parser<'_> {
    fn peek(&mut self) -> Option<u8> {
        while self.s.get(self.at) == Some(&b' ') {
            self.at += 1;
        }
        self.s.get(self.at).copied()
    }

    fn expr(&mut self) -> Option<Q> {
        let mut v = self.term()?;
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.at += 1;
            let (n, d) = self.term()?;
            let sign = if op == b'+' { 1 } else { -1 };
            v = reduce((v.0 * d + sign * n * v.1, v.1 * d))?;
        }
        Some(v)
    }

    fn term(&mut self) -> Option<Q> {
        let mut v = self.factor()?;
        while let Some(op @ (b'*' | b'/')) = self.peek() {
            self.at += 1;
            let (n, d) = self.factor()?;
            v = if op == b'*' {
                reduce((v.0 * n, v.1 * d))?
            } else {
                reduce((v.0 * d, v.1 * n))?
            };
        }
        Some(v)
    }

    fn factor(&mut self) -> Option<Q> {
        match self.peek()? {
            b'(' => {
                self.at += 1;
                let v = self.expr()?;
                (self.peek()? == b')').then_some(())?;
                self.at += 1;
                Some(v)
            }
            c if c.is_ascii_digit() => {
                let start = self.at;
                while self.s.get(self.at).is_some_and(u8::is_ascii_digit) {
                    self.at += 1;
                }
                let n: u32 = std::str::from_utf8(&self.s[start..self.at])
                    .ok()?
                    .parse()
                    .ok()?;
                self.used.push(n);
                Some((n as i128, 1))
            }
            _ => None,
        }
    }
}
