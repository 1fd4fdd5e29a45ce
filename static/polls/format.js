// Number formats shared by the stage and the remote, in the page's language (7,5 in Dutch).
export function numberFormats(lang) {
  return {
    num: new Intl.NumberFormat(lang),
    num1: new Intl.NumberFormat(lang, { maximumFractionDigits: 1 }),
    mean1: new Intl.NumberFormat(lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 }),
    signed: new Intl.NumberFormat(lang, { signDisplay: 'exceptZero', maximumFractionDigits: 0 }),
    signed1: new Intl.NumberFormat(lang, { signDisplay: 'exceptZero', maximumFractionDigits: 1 }),
  };
}
